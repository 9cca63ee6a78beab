"""``campfire run``: YAML workflows (schema, step registry, runner, outputs, provenance).

* :mod:`campfire.workflows.schema` — the file format, validated with key + line errors
* :mod:`campfire.workflows.registry` — step names (read-only mapping)
* :mod:`campfire.workflows.steps` — what each step does to the lazy collections
* :mod:`campfire.workflows.runner` — :func:`~campfire.workflows.runner.run_workflow`
* :mod:`campfire.workflows.outputs`, :mod:`campfire.workflows.provenance`
"""
