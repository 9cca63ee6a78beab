"""Workflow files: the schema, errors that name the key and its line, the read-only step registry."""
from __future__ import annotations

import pathlib

import pytest

from campfire.errors import ValidationError
from campfire.workflows.registry import get_step, register_step, registry
from campfire.workflows.schema import load_workflow, parse_workflow
from campfire.workflows.yamlmarks import load_with_lines

ROOT = pathlib.Path(__file__).parents[2]

GOOD = """\
name: t
archive: demo
selection:
  tags: [lrd]
  dq_flags: "~CONTAMINATION & ~LOW_SNR"
steps:
  - download
  - calibrate: {method: flat}
  - resample:
      grid: {start: 0.6, stop: 5.3, num: 100}
  - stack: {by: object}
  - stack: {by: all, rest_frame: true, method: median}
outputs:
  plots: 3
  zarr: false
cluster:
  scheduler: local:2
  batch_size: 50
"""


def test_a_good_workflow_parses_with_defaults():
    wf = parse_workflow(GOOD, source="t.yaml")
    assert [s.name for s in wf.steps] == ["download", "calibrate", "resample", "stack", "stack"]
    assert wf.steps[1].options == {"method": "flat", "degree": 3, "min_snr": 0.5, "bands": None}
    assert wf.steps[4].options["rest_frame"] is True and wf.steps[4].options["by"] == "all"
    assert wf.outputs.plots == 3 and wf.outputs.zarr is None and wf.outputs.table == "summary.ecsv"
    assert wf.cluster.scheduler == "local:2" and wf.cluster.batch_size == 50
    assert wf.selection["dq_flags"] == "~CONTAMINATION & ~LOW_SNR"
    assert wf.steps[2].line == 9 and len(wf.sha256) == 64


def test_a_stack_takes_the_union_grid():
    """Issue 17.4: ``grid: union`` (any case) is the stack's wavelength_grid='union'; other grids still parse."""
    wf = parse_workflow(GOOD.replace("  - stack: {by: object}", "  - stack: {by: object, grid: Union}")
                        .replace("method: median}", "method: median, grid: union}"), source="t.yaml")
    assert wf.steps[3].options["grid"] == "union" and wf.steps[4].options["grid"] == "union"
    wf = parse_workflow(GOOD.replace("  - stack: {by: object}", "  - stack: {by: object, grid: [1.0, 2.0]}"),
                        source="t.yaml")
    assert wf.steps[3].options["grid"] == (1.0, 2.0)


@pytest.mark.parametrize("path", sorted((ROOT / "workflows").glob("*.yaml")))
def test_shipped_workflows_validate(path):
    wf = load_workflow(path)
    assert wf.archive == "demo" and wf.name == path.stem
    assert wf.steps[0].name == "download"


def _bad(text: str, tmp_path) -> str:
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ValidationError) as err:
        load_workflow(f)
    assert str(err.value).startswith(str(f))
    return str(err.value)


@pytest.mark.parametrize(
    "edit, line, key, what",
    [
        (("  - calibrate: {method: flat}", "  - calibrate: {method: flat, degre: 2}"), 8, "steps[1].calibrate.degre",
         "unknown option 'degre'"),
        (("  - calibrate: {method: flat}", "  - calibrate: {method: flatt}"), 8, "steps[1].calibrate.method",
         "expected one of 'chebyshev', 'flat'"),
        (("  - download", "  - downlaod"), 7, "steps[0]", "unknown step 'downlaod'"),
        (("  tags: [lrd]", "  tagz: [lrd]"), 4, "selection.tagz", "unknown key 'tagz'"),
        (("  tags: [lrd]", "  tags: 5"), 4, "selection.tags", "expected a list of strings"),
        (('  dq_flags: "~CONTAMINATION & ~LOW_SNR"', '  dq_flags: "~(CONTAMINATION | LOW_SNR)"'), 5, "selection.dq_flags",
         "not supported"),
        (("      grid: {start: 0.6, stop: 5.3, num: 100}", "      grid: {start: 0.6, stop: 5.3, nun: 100}"), 10,
         "steps[2].resample.grid.nun", "unknown key 'nun'"),
        (("      grid: {start: 0.6, stop: 5.3, num: 100}", "      grid: {start: 6, stop: 5.3, num: 100}"), 10,
         "steps[2].resample.grid.stop", "must be < stop"),
        (("  - stack: {by: object}", "  - stack: {by: objects}"), 11, "steps[3].stack.by", "expected one of"),
        (("  - stack: {by: object}", "  - stack: {by: object, grid: widest}"), 11, "steps[3].stack.grid",
         "expected union, {start, stop, num|step|resolution} or a list of wavelengths, got 'widest'"),
        (("  - stack: {by: object}", "  - stack: {by: object, grid: 3}"), 11, "steps[3].stack.grid",
         "expected union, {start, stop, num|step|resolution} or a list of wavelengths, got 3"),
        (("  plots: 3", "  plots: many"), 14, "outputs.plots", "expected true, false or a number"),
        (("  scheduler: local:2", "  scheduler: gpu"), 17, "cluster.scheduler", "unknown scheduler 'gpu'"),
        (("  batch_size: 50", "  batch_size: 0"), 18, "cluster.batch_size", "positive integer"),
        (("cluster:", "clustr:"), 16, "clustr", "unknown key 'clustr'"),
        (("archive: demo", "archive: demo:huge"), 2, "archive", "unknown demo size"),
    ],
)
def test_bad_yaml_errors_name_the_key_and_its_line(tmp_path, edit, line, key, what):
    old, new = edit
    assert old in GOOD
    msg = _bad(GOOD.replace(old, new, 1), tmp_path)
    assert f": line {line}: {key}: " in msg, msg
    assert what in msg, msg


def test_yaml_syntax_errors_and_structure(tmp_path):
    assert "line 8, column 14: invalid YAML" in _bad(GOOD.replace("  - download", "  - [download"), tmp_path)
    assert "duplicate key" in _bad(GOOD + "name: again\n", tmp_path)
    assert "missing" in _bad("name: x\n", tmp_path)
    assert "empty workflow" in _bad("", tmp_path)
    assert "no such workflow file" in str(pytest.raises(ValidationError, load_workflow, tmp_path / "nope.yaml").value)


def test_line_map_of_nested_values():
    data, lines = load_with_lines("a:\n  - 1\n  - b: {c: 3}\n")
    assert data == {"a": [1, {"b": {"c": 3}}]}
    assert lines[("a", 1, "b", "c")] == 3 and lines.key(("a",)) == 1


def test_step_registry_is_read_only():
    assert set(registry) >= {"download", "open", "calibrate", "resample", "stack"}
    with pytest.raises(TypeError):
        registry["calibrate"] = "x:y"  # type: ignore[index]
    with pytest.raises(ValidationError, match="already registered"):
        register_step("calibrate", "x:y")
    with pytest.raises(ValidationError, match="unknown step"):
        get_step("nope")
    assert get_step("stack").name == "stack"
