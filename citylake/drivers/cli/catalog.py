"""`citylake catalog publish|diff`: publish the data-resource directory, or show what changed."""

from __future__ import annotations

import argparse
import json

from citylake.core.registry import RegistrationError
from citylake.core.settings import Settings
from citylake.drivers.cli.common import UsageError, fail, listed_registrations


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="{publish,diff}",
                                help="publish a new version, or show what changed")
    what = "publish a new version of the directory (database, exports, pages)"
    p = sub.add_parser("publish", help=what, description=what)
    p.add_argument("--base-url", help="public base URL of the directory folder, used for DCAT identifiers "
                                      "and access URLs (default: $CITYLAKE_DIRECTORY_BASE_URL, else the folder's file:// URI)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    what = "what changed since the previous publication (or between two, or since registrations changed)"
    d = sub.add_parser("diff", help=what, description=what)
    d.add_argument("--pending", action="store_true",
                   help="compare the registrations as they are now with the latest publication (or --to)")
    d.add_argument("--from", dest="from_version", type=int, metavar="N",
                   help="compare from this publication version (default: the one before --to)")
    d.add_argument("--to", dest="to_version", type=int, metavar="N",
                   help="compare to this publication version (default: the latest)")
    d.add_argument("--json", action="store_true",
                   help="one JSON object per change: kind, resource, code, name, details")


def run(args) -> int:
    if args.action == "diff":
        if args.pending and args.from_version is not None:  # pending compares with --to (default latest)
            return fail("catalog diff", "--from does not apply with --pending (use --to to pick the publication)")
        if args.from_version is not None and args.to_version is not None and args.from_version > args.to_version:
            return fail("catalog diff", f"--from {args.from_version} is after --to {args.to_version}: "
                                        f"give the older version as --from")

    from citylake.stages.publish.publish import diff, latest_publication, publish

    settings = Settings.from_env()
    try:
        # A missing or empty folder would publish (or diff) every resource as withdrawn.
        regs = (listed_registrations(settings.resources_dir)
                if args.action == "publish" or args.pending else None)
        if args.action == "publish":
            settings.ensure_local_dirs()
            result = publish(settings, regs, base_url=args.base_url)
            if args.json:
                print(json.dumps({
                    "version": result.version, "published_at": result.published_at.isoformat(),
                    "codes": result.codes, "new_codes": result.new_codes,
                    "changes": [c.to_dict() for c in result.changes], "outputs": result.outputs,
                    "warnings": result.warnings,
                }, ensure_ascii=False, indent=2, default=str))
                return 0
            print(f"政务数据资源目录 第 {result.version} 版：{len(result.entries)} 项资源，"
                  f"{result.changed} 项变更，新编码 {len(result.new_codes)} 个")
            for e in result.entries:
                f = result.facts[e["resource"]]
                rows = f"{f.row_count:,} 行" if f.has_data else "暂无数据"
                print(f"  {e['code']:16} {e['name']}  [{e['share']['type']}, {rows}, {f.freshness_label}]")
            for c in result.changes:
                print("  " + c.describe().replace("\n", "\n  "))
            for w in result.warnings:
                print(f"  warning: {w}")
            print("outputs:")
            for name, where in result.outputs.items():
                print(f"  {name:10} {where}")
            return 0
        changes = diff(settings, from_version=args.from_version, to_version=args.to_version, pending=args.pending,
                       registrations=regs)
        if args.json:
            for c in changes:
                print(json.dumps(c.to_dict(), ensure_ascii=False, default=str))
            return 0
        latest = latest_publication(settings)
        if latest is None and not args.pending:
            print("no publication yet: run `citylake catalog publish`")
            return 0
        if args.pending:
            what = "registrations now vs latest publication"
        elif args.from_version is None and args.to_version is None:
            what = "latest publication vs the one before"
        else:
            old = args.from_version if args.from_version is not None else "the one before"
            what = f"publication {old} to {args.to_version if args.to_version is not None else 'latest'}"
        print(f"{what}: {len(changes)} change(s)")
        for c in changes:
            print(c.describe())
        return 0
    except (RegistrationError, UsageError, LookupError) as exc:  # LookupError: no such publication version
        return fail(f"catalog {args.action}", exc)
