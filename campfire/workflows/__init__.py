"""``campfire run``: YAML workflows (schema, step registry, plan, resume, runner, outputs, provenance).

* :mod:`campfire.workflows.schema` — the file format, validated with key + line errors
  (:mod:`campfire.workflows.yamlmarks`: line numbers; :mod:`campfire.workflows.options`: option types)
* :mod:`campfire.workflows.registry` — step names (read-only mapping)
* :mod:`campfire.workflows.steps` — what each step does to the lazy collections
* :mod:`campfire.workflows.plan` — the selection, the graph of steps and outputs, the ``--dry-run`` plan
* :mod:`campfire.workflows.resume` — what earlier runs completed; the state a run leaves
* :mod:`campfire.workflows.runner` — :func:`~campfire.workflows.runner.run_workflow`: compute, write, summarise
* :mod:`campfire.workflows.outputs` — FITS / PNG / zarr / ECSV writers
* :mod:`campfire.workflows.provenance` — versions, catalog state, input keys
"""
