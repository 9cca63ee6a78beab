"""The ``campfire`` command line. Thin: parse arguments, call the library, print."""
from __future__ import annotations

import argparse
import getpass
import json
import sys

from campfire.errors import CampfireError

__all__ = ["main"]


def _add_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--observations", help="comma-separated observation names")
    p.add_argument("--programs", help="comma-separated program slugs or ids")
    p.add_argument("--fields", help="comma-separated fields")
    p.add_argument("--gratings", help="comma-separated gratings")


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _client(args):
    from campfire.client import Campfire

    return Campfire(base_url=getattr(args, "server", None), data_dir=getattr(args, "data_dir", None))


def _password(args) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return getpass.getpass("Password: ")


def cmd_demo_build(args) -> int:
    from campfire import demo

    root = demo.build(args.root, size=args.size, seed=args.seed) if args.root else demo.ensure(size=args.size, seed=args.seed)
    print(root)
    return 0


def cmd_demo_gallery(args) -> int:
    from campfire.gallery import write_gallery

    for path in write_gallery(args.out, data_dir=args.data_dir):
        print(path)
    return 0


def cmd_sync(args) -> int:
    print(json.dumps(_client(args).sync()))
    return 0


def cmd_download(args) -> int:
    result = _client(args).download(
        observations=_split(args.observations), programs=_split(args.programs), fields=_split(args.fields),
        gratings=_split(args.gratings), stale_only=args.stale_only, max_workers=args.max_workers,
    )
    print(json.dumps(result, default=str))
    return 0


def cmd_login(args) -> int:
    cf = _client(args)
    username = args.username or input("Username: ")
    cf.login(username, _password(args))
    print(f"logged in to {cf.base_url} as {username}")
    return 0


def cmd_users_add(args) -> int:
    from campfire.server.auth import add_user

    add_user(args.root, args.name, _password(args), programs=_split(args.programs) or [])
    print(f"added user {args.name}")
    return 0


def cmd_serve(args) -> int:
    from campfire.server.app import serve

    serve(args.root, host=args.host, port=args.port)
    return 0


def cmd_run(args) -> int:
    from campfire.workflows.runner import run_workflow

    summary = run_workflow(
        args.workflow, scheduler=args.scheduler, workers=args.workers, dry_run=args.dry_run, force=args.force,
        output=args.output,
    )
    return 0 if summary.get("ok", True) else 1


def cmd_tags(args) -> int:
    cf = _client(args)
    if args.tags_cmd == "list":
        cf.get_tags(remote=True).pprint(max_lines=-1, max_width=-1)
    elif args.tags_cmd == "create":
        cf.create_tag(args.slug, args.name or args.slug, shared=args.shared, description=args.description or "")
    elif args.tags_cmd == "add":
        cf.tag_objects(args.slug, args.object_ids)
    elif args.tags_cmd == "remove":
        cf.untag_objects(args.slug, args.object_ids)
    elif args.tags_cmd == "delete":
        cf.delete_tag(args.slug)
    elif args.tags_cmd == "update":
        cf.update_tag(args.slug, name=args.name, description=args.description, shared=args.shared)
    return 0


def _connection(*, data_dir: bool = True) -> argparse.ArgumentParser:
    # a parent parser, so `campfire tags create x --server URL` works as well as `campfire tags --server URL create x`
    p = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    p.add_argument("--server", help="server URL (default $CAMPFIRE_API_URL)")
    if data_dir:
        p.add_argument("--data-dir", help="data directory (default $CAMPFIRE_ROOT or ~/campfire)")
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="campfire", description="JWST/NIRSpec MSA archive client and pipeline")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    connection = _connection()

    demo = sub.add_parser("demo", help="the built-in demo archive").add_subparsers(
        dest="demo_cmd", required=True, metavar="COMMAND"
    )
    p = demo.add_parser("build", help="build the demo archive (default ~/.cache/campfire/demo)")
    p.add_argument("root", nargs="?", help="folder to build into (default ~/.cache/campfire/demo)")
    p.add_argument(
        "--size", choices=["small", "full", "catalog"], default="small",
        help="small: 240 objects, 460 spectra (default); full: 2,450 objects, 7,200 spectra; catalog: 1M catalog rows, no files",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed builds the same archive (default 0)")
    p.set_defaults(func=cmd_demo_build)
    p = demo.add_parser("gallery", help="write every figure of the reference for demo objects")
    p.add_argument("out", help="folder to write the figures and index.html into")
    p.add_argument("--data-dir", help="archive root to read (default: the demo archive, built if missing)")
    p.set_defaults(func=cmd_demo_gallery)

    p = sub.add_parser("sync", parents=[connection], help="pull the catalog from the server")
    p.set_defaults(func=cmd_sync)
    p = sub.add_parser("download", parents=[connection], help="download FITS files (after sync)")
    _add_filters(p)
    p.add_argument("--stale-only", action="store_true", help="fetch only files whose server hash changed")
    p.add_argument("--max-workers", type=int, default=4, help="parallel connections (default 4)")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("login", parents=[_connection(data_dir=False)], help="log in and store tokens (mode 0600)")
    p.add_argument("--username", help="account name (prompted for when absent)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(func=cmd_login)

    users = sub.add_parser("users", help="server accounts").add_subparsers(
        dest="users_cmd", required=True, metavar="COMMAND"
    )
    p = users.add_parser("add", help="add an account and grant programs")
    p.add_argument("name", help="account name")
    p.add_argument("--root", required=True, help="archive root the server serves")
    p.add_argument("--programs", help="comma-separated program slugs")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(func=cmd_users_add)

    p = sub.add_parser("serve", help="serve an archive root over HTTP")
    p.add_argument("root", help="archive root (DESIGN.md layout), e.g. ~/.cache/campfire/demo")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("run", help="run a YAML workflow")
    p.add_argument("workflow", help="workflow file, e.g. workflows/stack_lrds.yaml")
    p.add_argument("--scheduler", help="threads | processes | local:N | tcp://HOST:PORT")
    p.add_argument("--workers", type=int, help="start a LocalCluster with N workers")
    p.add_argument("--dry-run", action="store_true", help="print the plan without running it")
    p.add_argument("--force", action="store_true", help="recompute outputs that exist")
    p.add_argument("--output", help="output directory (overrides the workflow's)")
    p.set_defaults(func=cmd_run)

    tags = sub.add_parser("tags", parents=[connection], help="user tags (list, create, add, remove, delete, update)")
    tsub = tags.add_subparsers(dest="tags_cmd", required=True, metavar="COMMAND")
    tsub.add_parser("list", parents=[connection], help="the tags you can see, with member counts")
    p = tsub.add_parser("create", parents=[connection], help="create a tag (private unless --shared)")
    p.add_argument("slug", help="lower-case letters, digits and hyphens")
    p.add_argument("--name", help="display name (default the slug)")
    p.add_argument("--description", help="free text")
    p.add_argument("--shared", action="store_true", help="visible to every logged-in user")
    for name, helptext in (("add", "add objects to your tag"), ("remove", "remove objects from your tag")):
        p = tsub.add_parser(name, parents=[connection], help=helptext)
        p.add_argument("slug", help="the tag")
        p.add_argument("object_ids", nargs="+", help="object IDs")
    p = tsub.add_parser("delete", parents=[connection], help="delete your tag")
    p.add_argument("slug", help="the tag")
    p = tsub.add_parser("update", parents=[connection], help="rename, re-describe, share or unshare your tag")
    p.add_argument("slug", help="the tag")
    p.add_argument("--name", help="new display name")
    p.add_argument("--description", help="new description")
    share = p.add_mutually_exclusive_group()
    share.add_argument("--shared", dest="shared", action="store_true", default=None, help="make it shared")
    share.add_argument("--private", dest="shared", action="store_false", help="make it private")
    tags.set_defaults(func=cmd_tags)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CampfireError as err:
        print(f"campfire: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("campfire: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
