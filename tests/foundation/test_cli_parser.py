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
