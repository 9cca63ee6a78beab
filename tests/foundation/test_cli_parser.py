"""The command line: every option documented, connection options accepted on either side of a subcommand."""

import argparse

import pytest

from campfire.cli import build_parser


def _parsers(parser: argparse.ArgumentParser, path=("campfire",)):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, path + (name,))


def test_every_argument_has_help():
    missing = [
        f"{' '.join(path)} {action.dest}"
        for path, parser in _parsers(build_parser())
        for action in parser._actions
        if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) and not action.help
    ]
    assert not missing, missing


@pytest.mark.parametrize(
    "argv",
    [
        ["tags", "--server", "http://h:1", "--data-dir", "/d", "add", "mine", "a", "b"],
        ["tags", "add", "mine", "a", "b", "--server", "http://h:1", "--data-dir", "/d"],
    ],
)
def test_connection_options_before_or_after_the_tags_subcommand(argv):
    args = build_parser().parse_args(argv)
    assert (args.server, args.data_dir, args.slug, args.object_ids) == ("http://h:1", "/d", "mine", ["a", "b"])


def test_connection_options_default_to_the_environment():
    args = build_parser().parse_args(["sync"])
    # absent options stay absent so Campfire() falls back to $CAMPFIRE_API_URL / $CAMPFIRE_ROOT
    assert getattr(args, "server", None) is None and getattr(args, "data_dir", None) is None


def test_bad_choice_names_the_option(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo", "build", "--size", "huge"])
    assert "--size" in capsys.readouterr().err


def test_the_command_exits_without_the_shutdowns_collections_and_main_leaves_the_collector_alone(tmp_path):
    """``campfire`` and ``python -m campfire`` freeze the collector after the command (a quick exit);
    ``main``, which callers run in a process that goes on, does not."""
    import subprocess
    import sys
    from importlib.metadata import entry_points

    (script,) = [ep for ep in entry_points(group="console_scripts") if ep.name == "campfire"]
    assert script.value == "campfire.cli:console_main"
    missing = str(tmp_path / "missing.yaml")
    code = ("import gc, sys; from campfire.cli import main, console_main; "
            f"a = main(['run', {missing!r}]); frozen_after_main = gc.get_freeze_count(); "
            f"b = console_main(['run', {missing!r}]); print(a, b, frozen_after_main, gc.get_freeze_count() > 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["2", "2", "0", "True"]
    assert out.stderr.count("campfire: error:") == 2
    # what the command printed still reaches the pipe whole
    run = subprocess.run([sys.executable, "-m", "campfire", "run", missing], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 2 and "campfire: error:" in run.stderr and missing in run.stderr
