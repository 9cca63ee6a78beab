"""The ``campfire`` command line. Thin: parse arguments, call the library, print."""
from __future__ import annotations

import argparse
import gc
import getpass
import json
import re
import sys

from campfire.errors import CampfireError

__all__ = ["main", "for_the_command_line", "sync_text", "download_text"]

# The library's messages speak Python (cf.sync(), base_url=); on the command line the same
# advice names the command, option or environment variable instead.
_CLI_WORDING = [
    (r"\(or pass base_url=\)", "(or --server URL)"),
    (r"pass base_url=", "pass --server URL"),
    (r"\(or pass data_dir=\)", "(or --data-dir DIR)"),
    (r"Campfire\(data_dir=campfire\.demo\.ensure\(\)\)",
     "`campfire demo build`, then --data-dir with the folder it prints"),
    (r"Campfire\(base_url=\.\.\.\)\.inspect", "`campfire inspect --server URL --remote`"),
    (r"\b[Rr]un download\(\) again", "Run `campfire download` again"),
    (r"\bdownload\(\) (needs|writes)", r"`campfire download` \1"),
    (r"(?<![/\w.-])data_dir(?![/\w-]|\.\w)", "--data-dir"),  # the word, never part of a path
    (r"cf\.create_tag\('([^']*)', name\)", r"`campfire tags create \1`"),
    (r"cf\.get_tags\(\)", "`campfire tags list`"),
    (r"cf\.(sync|download|login)\(\)", r"`campfire \1`"),
]


def for_the_command_line(message: str) -> str:
    """A library message reworded for the command line (commands and options, not Python calls).

    Parameters
    ----------
    message : str

    Returns
    -------
    str

    Examples
    --------
    >>> for_the_command_line("set CAMPFIRE_API_URL (or pass base_url=) and run cf.sync()")
    'set CAMPFIRE_API_URL (or --server URL) and run `campfire sync`'
    """
    for pattern, replacement in _CLI_WORDING:
        message = re.sub(pattern, replacement, message)
    return message


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


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def sync_text(result: dict, *, server: str, user: str | None, catalog: str) -> str:
    """What ``campfire sync`` did, in words.

    Examples
    --------
    >>> print(sync_text({'observations': 8, 'objects': 240, 'spectra': 460, 'stale_count': 0},
    ...                 server='http://127.0.0.1:8000', user=None, catalog='/d/meta/campfire.db'))
    synced the catalog of http://127.0.0.1:8000 (anonymous: public programs only): 8 observations, 240 objects, 460 spectra
    catalog: /d/meta/campfire.db
    """
    who = f"as {user}" if user else "anonymous: public programs only"
    lines = [f"synced the catalog of {server} ({who}): {_plural(result['observations'], 'observation')}, "
             f"{_plural(result['objects'], 'object')}, {result['spectra']:,} spectr{'um' if result['spectra'] == 1 else 'a'}",
             f"catalog: {catalog}"]
    if result.get("stale_count"):
        lines.append(f"{_plural(result['stale_count'], 'downloaded file')} changed on the server since you fetched "
                     "them: `campfire download --stale-only` fetches them again")
    return "\n".join(lines)


def download_text(result: dict, *, products: str) -> str:
    """What ``campfire download`` did, in words (sizes as :func:`campfire.workflows.plan.human_bytes`).

    Examples
    --------
    >>> print(download_text({'downloaded': 2, 'skipped': 5, 'failed': [], 'bytes': 3145728, 'seconds': 1.25},
    ...                     products='/d/products'))
    downloaded 2 files (3.0 MiB) in 1.2 s into /d/products; 5 already there and up to date
    """
    from campfire.workflows.plan import human_bytes

    if not result["downloaded"]:
        text = f"nothing to download: {_plural(result['skipped'], 'file')} already in {products} and up to date"
    else:
        text = (f"downloaded {_plural(result['downloaded'], 'file')} ({human_bytes(result['bytes'])}) in "
                f"{result['seconds']:.1f} s into {products}; {result['skipped']:,} already there and up to date")
    if result["failed"]:
        text += f"; {len(result['failed'])} failed"
    return text


def cmd_sync(args) -> int:
    cf = _client(args)
    result = cf.sync()
    if args.json:
        print(json.dumps(result))
        return 0
    from campfire.catalog.db import catalog_path

    print(sync_text(result, server=cf.base_url, user=cf.local_catalog.meta("sync_user") or None,
                    catalog=str(catalog_path(cf.data_dir))))
    return 0


def cmd_download(args) -> int:
    cf = _client(args)
    result = cf.download(
        observations=_split(args.observations), programs=_split(args.programs), fields=_split(args.fields),
        gratings=_split(args.gratings), stale_only=args.stale_only, max_workers=args.max_workers,
    )
    print(json.dumps(result, default=str) if args.json else download_text(result, products=str(cf.data_dir / "products")))
    return 0


def cmd_login(args) -> int:
    cf = _client(args)
    username = args.username or input("Username: ")
    cf.login(username, _password(args))
    print(f"logged in to {cf.base_url} as {username}")
    return 0


def cmd_users_add(args) -> int:
    from campfire.server.auth import add_user

    add_user(args.root, args.name, _password(args), programs=_split(args.programs) or [], role=args.role)
    print(f"added user {args.name}" + (f" ({args.role})" if args.role else ""))
    return 0


def cmd_archive_ingest(args) -> int:
    from campfire.archive import ingest
    from campfire.archive.run import format_counts

    summary = ingest(
        args.root, args.sources, table=args.table, photometry=args.photometry, programs=args.programs,
        match_radius=args.match_radius, mode=args.mode, fit=not args.no_fit, withdraw_missing=args.withdraw_missing,
        scheduler=args.scheduler, workers=args.workers, progress=False if args.quiet else None,
        products_url=args.products_url,
    )
    problems = summary[[s in ("failed", "missing", "withdrawn", "warning") for s in summary["status"]]]
    for row in problems:
        print(f"{row['status']:>9}  {row['source']}: {row['reason']}", file=sys.stderr)
    if args.summary:
        summary.write(args.summary, overwrite=True)
    print(f"{args.root}: {format_counts(summary)}")
    failed = summary.meta["counts"]["failed"]
    return 1 if args.strict and failed else 0


def cmd_archive_push_imaging(args) -> int:
    from campfire.archive.imaging import push_imaging

    done = push_imaging(args.root, args.imaging_url)
    print(f"{args.root}: {_plural(done['files'], 'file')} of imaging ({done['bytes'] / 1e6:.1f} MB, "
          f"{_plural(done['fields'], 'field')}) uploaded to {done['imaging_url']} and verified; the catalog "
          f"records it (archive_meta.imaging_url), so {args.root.rstrip('/')}/imaging is no longer read and may "
          "be removed")
    return 0


def cmd_serve(args) -> int:
    from campfire.server.app import serve

    serve(args.root, host=args.host, port=args.port, blind_inspections=args.blind_inspections,
          forwarded_allow_ips=args.forwarded_allow_ips, products_delivery=args.products_delivery)
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
        row = cf.create_tag(args.slug, args.name or args.slug, shared=args.shared, description=args.description or "")
        print(f"created tag {_tag_name(row, args.slug)} ({row.get('name') or args.name or args.slug}, "
              f"{'shared with every logged-in user' if args.shared else 'private'}); "
              f"add objects with `campfire tags add {args.slug} OBJECT_ID ...`")
    elif args.tags_cmd == "add":
        n = cf.tag_objects(args.slug, args.object_ids)
        print(f"added {_plural(n, 'object')} to tag {args.slug}" + _already(len(args.object_ids) - n, "had it")
              + "; `campfire sync` brings the tag into your synced catalog")
    elif args.tags_cmd == "remove":
        n = cf.untag_objects(args.slug, args.object_ids)
        print(f"removed tag {args.slug} from {_plural(n, 'object')}" + _already(len(args.object_ids) - n, "did not have it"))
    elif args.tags_cmd == "delete":
        cf.delete_tag(args.slug)
        print(f"deleted tag {args.slug}")
    elif args.tags_cmd == "update":
        row = cf.update_tag(args.slug, name=args.name, description=args.description, shared=args.shared)
        state = "" if args.shared is None else (", now shared" if args.shared else ", now private")
        print(f"updated tag {_tag_name(row, args.slug)}{state}")
    return 0


def _tag_name(row: dict, slug: str) -> str:
    owner = row.get("owner") if isinstance(row, dict) else None
    return f"{owner}/{slug}" if owner and row.get("kind") != "system" else slug


def _already(n: int, what: str) -> str:
    return f" ({n} already {what})" if n > 0 else ""


def cmd_inspect(args) -> int:
    result = _client(args).inspect(
        args.object_id, redshift=args.redshift, quality=args.quality, comment=args.comment or "",
        flags=args.flag or None, resolves_conflict=args.resolves_conflict, reviewer=args.reviewer,
        remote=args.remote)
    c = result["consensus"]
    z = "-" if result["redshift"] is None else f"{result['redshift']:.4f}"
    print(f"inspection {result['inspection_id']} of {result['object_id']} by {result['reviewer']}: "
          f"z={z} {result['quality_name']} ({result['quality']})")
    cz = "-" if c["redshift"] is None else f"{c['redshift']:.4f}"
    print(f"consensus: {c['state']}, z={cz}, quality {c['quality']}, {c['n_reviewers']} reviewer(s)")
    return 0


def cmd_inspections(args) -> int:
    table = _client(args).get_inspections(args.object_id, remote=args.remote)
    table.pprint(max_lines=-1, max_width=-1)
    c = table.meta["consensus"]
    print(f"consensus: {c['state']}, z={c['redshift']}, quality {c['quality']}, {c['n_reviewers']} reviewer(s)")
    return 0


def _connection(*, data_dir: bool = True) -> argparse.ArgumentParser:
    # a parent parser, so `campfire tags create x --server URL` works as well as `campfire tags --server URL create x`
    p = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    p.add_argument("--server", help="server URL (default $CAMPFIRE_API_URL)")
    if data_dir:
        p.add_argument("--data-dir", help="data directory (default $CAMPFIRE_ROOT or ~/campfire)")
    return p


def build_parser() -> argparse.ArgumentParser:
    from campfire.config import package_version

    parser = argparse.ArgumentParser(prog="campfire", description="JWST/NIRSpec MSA archive client and pipeline")
    parser.add_argument("--version", action="version", version=f"campfire {package_version()}")
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

    archive = sub.add_parser("archive", help="make and update an archive root from real products").add_subparsers(
        dest="archive_cmd", required=True, metavar="COMMAND"
    )
    p = archive.add_parser(
        "ingest", help="ingest msaexp/DJA *.spec.fits files (+ DJA table, photometry, programs.yaml) into ROOT",
        description="Create or update the archive root ROOT from real NIRSpec MSA products. Re-running it is "
                    "incremental: unchanged inputs change nothing. Problems are listed on stderr; the exit status "
                    "is non-zero only with --strict.",
    )
    p.add_argument("root", help="archive root to create or update")
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="*.spec.fits files, folders (recursive), globs or fsspec URLs (https://, s3://, file://)")
    p.add_argument("--table", help="the DJA merged table (CSV, CSV.gz, ECSV or FITS): grades, identities, photometry")
    p.add_argument("--photometry", help="a photometric catalogue (ECSV, FITS or CSV; ra/dec or id, flux+err per band)")
    p.add_argument("--programs", help="programs.yaml: slug, name, PI, public, members per program (default: all public)")
    p.add_argument("--match-radius", type=float, default=0.2, help="arcsec within which spectra are one object (0.2)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--copy", dest="mode", action="store_const", const="copy", help="copy the files (default)")
    how.add_argument("--link", dest="mode", action="store_const", const="link", help="link to the files (no copies)")
    how.add_argument("--in-place", dest="mode", action="store_const", const="in-place",
                     help="serve files already under ROOT/products where they are")
    p.set_defaults(mode="copy")
    p.add_argument("--products-url", metavar="URL",
                   help="put the products under this fsspec URL (s3://bucket/prefix; endpoint and credentials from "
                        "AWS_ENDPOINT_URL, AWS_* / FSSPEC_S3_*); the catalog stays in ROOT/meta and records it")
    p.add_argument("--workers", type=int, help="worker count (with no --scheduler: a LocalCluster of N workers)")
    p.add_argument("--scheduler", help="threads | processes (default) | synchronous | local:N | tcp://HOST:PORT")
    p.add_argument("--no-fit", action="store_true", help="skip the automatic redshift fits")
    p.add_argument("--withdraw-missing", action="store_true", help="remove the spectra of files that disappeared")
    p.add_argument("--strict", action="store_true", help="exit with status 1 when any input failed")
    p.add_argument("--summary", help="write the full summary table to this file (.ecsv, .csv, .fits)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_archive_ingest)
    p = archive.add_parser(
        "push-imaging", help="put ROOT/imaging on an object store and serve cutouts from there",
        description="Upload ROOT/imaging (index.json, stamps, shutters of each field) under IMAGING_URL, read every "
                    "object back to verify it, then record the URL in ROOT's catalog (archive_meta.imaging_url): "
                    "cutouts and shutters are read from there from then on. Endpoint and credentials: "
                    "AWS_ENDPOINT_URL, AWS_* / FSSPEC_S3_*.",
    )
    p.add_argument("root", metavar="ROOT", help="archive root whose imaging/ folder is pushed")
    p.add_argument("imaging_url", metavar="IMAGING_URL", help="fsspec URL to put it under (s3://bucket/prefix)")
    p.set_defaults(func=cmd_archive_push_imaging)

    p = sub.add_parser("sync", parents=[connection], help="pull the catalog from the server")
    p.add_argument("--json", action="store_true", help="print the counts as JSON (for scripts)")
    p.set_defaults(func=cmd_sync)
    p = sub.add_parser("download", parents=[connection], help="download FITS files (after sync)")
    _add_filters(p)
    p.add_argument("--stale-only", action="store_true", help="fetch only files whose server hash changed")
    p.add_argument("--max-workers", type=int, default=4, help="parallel connections (default 4)")
    p.add_argument("--json", action="store_true", help="print the result as JSON (for scripts)")
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
    p.add_argument("--role", choices=["member", "admin"], default=None,
                   help="member (default for a new account) or admin: sees every program, inspects any object, "
                        "resolves conflicts between reviewers")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(func=cmd_users_add)

    p = sub.add_parser("serve", help="serve an archive root over HTTP")
    p.add_argument("root", help="archive root (DESIGN.md layout), e.g. ~/.cache/campfire/demo")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--blind-inspections", action="store_true",
                   help="a reviewer sees others' inspections of an object only after giving their own")
    p.add_argument("--forwarded-allow-ips", metavar="ADDRESSES",
                   help="comma-separated proxies (addresses or networks, '*' for any) whose X-Forwarded-For "
                        "names the client; by default no proxy header is trusted")
    p.add_argument("--products-delivery", choices=("redirect", "stream"),
                   help="products on an object store: redirect to short-lived pre-signed URLs (default) or stream "
                        "the bytes through this server")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("run", help="run a YAML workflow")
    p.add_argument("workflow", help="workflow file, e.g. workflows/stack_lrds.yaml")
    p.add_argument("--scheduler", help="threads | processes | local:N | tcp://HOST:PORT")
    p.add_argument("--workers", type=int, help="start a LocalCluster with N workers")
    p.add_argument("--dry-run", action="store_true", help="print the plan without running it")
    p.add_argument("--force", action="store_true", help="recompute outputs that exist")
    p.add_argument("--output", help="output directory (overrides the workflow's)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("inspect", parents=[connection], help="grade an object's redshift (stored as your inspection)")
    p.add_argument("object_id", help="the object, e.g. ember_uds_p4_123456")
    p.add_argument("--redshift", type=float, help="your redshift (needed from quality 2 on)")
    p.add_argument("--quality", required=True,
                   help="0-4 or not_inspected, impossible, tentative, probable, secure")
    p.add_argument("--comment", help="free text (at most 2000 characters)")
    p.add_argument("--flag", action="append", choices=["BAD_SPECTRUM", "WRONG_EXTRACTION", "CONTAMINATED"],
                   help="an issue flag (repeat for several)")
    p.add_argument("--resolves-conflict", action="store_true", help="settle a conflict (archive admins only)")
    p.add_argument("--reviewer", help="who grades, in an archive root of your own (default: your login name)")
    p.add_argument("--remote", action="store_true", help="grade on the server even if --data-dir is an archive root")
    p.set_defaults(func=cmd_inspect)
    p = sub.add_parser("inspections", parents=[connection], help="an object's inspections and their consensus")
    p.add_argument("object_id", help="the object")
    p.add_argument("--remote", action="store_true", help="ask the server, not the synced catalog")
    p.set_defaults(func=cmd_inspections)

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
        print(f"campfire: error: {for_the_command_line(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("campfire: interrupted", file=sys.stderr)
        return 130


def console_main(argv: list[str] | None = None) -> int:
    """The ``campfire`` command (and ``python -m campfire``): :func:`main`, then a quick exit.

    Everything a command writes is closed when it returns. Freezing the garbage collector's
    objects then spares the interpreter's shutdown its collections over them: ~0.6 s after a
    run that imported astropy, dask and matplotlib (0.06 s left). The exit still runs the atexit
    handlers and flushes stdout and stderr. Not in :func:`main`, which tests and callers run
    inside a process that goes on.
    """
    code = main(argv)
    gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(console_main())
