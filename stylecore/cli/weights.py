"""``python -m stylecore weights list | verify | fetch``."""

from __future__ import annotations

import argparse
import json

HELP = "list, verify or fetch pretrained weight files"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="show every registered file and whether it is present")
    ls.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    ls.add_argument("--family", help="only this family (e.g. vgg19-wct)")
    vf = sub.add_parser("verify", help="check the SHA-256 of every present file (or NAMEs)")
    vf.add_argument("names", nargs="*", metavar="NAME", help="registry names (default: all present)")
    ft = sub.add_parser("fetch", help="download files from the official URL or a mirror")
    ft.add_argument("names", nargs="*", metavar="NAME", help="registry names (default: all offline-mirrorable)")
    ft.add_argument("--all", action="store_true", help="fetch every registered file")
    ft.add_argument("--mirror", metavar="DIR_OR_URL", help="folder or base URL holding the files by file name")
    ft.add_argument("--dest", metavar="DIR", help="target folder (default: the user cache)")
    ft.add_argument("--force", action="store_true", help="download even if a verified copy exists")


def run(args: argparse.Namespace) -> int:
    from stylecore import weights as w

    if args.action == "list":
        for spec in w.list_specs(args.family):
            try:
                path, status = str(w.resolve(spec.name)), "ok"
            except w.MissingWeightsError:
                path, status = "", "missing"
            except w.ChecksumMismatchError:
                path, status = "", "CORRUPT"
            if args.json:
                print(json.dumps({"name": spec.name, "file": spec.filename, "family": spec.family,
                                  "sha256": spec.sha256, "license": spec.license, "url": spec.url,
                                  "status": status, "path": path}))
            else:
                print(f"{spec.name:32} {status:8} {spec.family:18} {spec.filename}")
        return 0
    if args.action == "verify":
        names = args.names or [s.name for s in w.list_specs()]
        failures = 0
        for name in names:
            try:
                path = w.resolve(name)
                print(f"ok       {name}  {path}")
            except w.MissingWeightsError:
                if args.names:
                    print(f"missing  {name}")
                    failures += 1
            except w.ChecksumMismatchError as exc:
                print(f"CORRUPT  {name}: {exc}")
                failures += 1
        return 1 if failures else 0
    names = args.names or [s.name for s in w.list_specs() if args.all or s.sha256 is not None]
    for name in names:
        path = w.fetch(name, mirror=args.mirror, dest=args.dest, force=args.force)
        print(f"fetched  {name}  {path}")
    return 0
