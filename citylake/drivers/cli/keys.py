"""`citylake keys`: the data service's API keys (administrators run this on the centre's host).

    citylake keys issue --department gaj [--label "人口科 张三"]   # prints the key once
    citylake keys issue --admin
    citylake keys list
    citylake keys revoke clk_AbC123

Only a key's SHA-256 is stored (:func:`citylake.stages.share.issue_key`): a lost key is revoked and
a new one issued, never shown again.
"""

from __future__ import annotations

import argparse

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from citylake.core.settings import Settings
from citylake.drivers.cli.common import fail
from citylake.stages import share
from citylake.stages.publish import migrations
from citylake.stages.publish.models import ApiKey


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, help="issue, list or revoke")
    issue = sub.add_parser("issue", help="issue a key for a department (or an administrator); printed once")
    who = issue.add_mutually_exclusive_group(required=True)
    who.add_argument("--department", help="the department code, e.g. gaj")
    who.add_argument("--admin", action="store_true", help="an administrator of the centre")
    issue.add_argument("--label", help="who holds it, to tell keys apart")
    sub.add_parser("list", help="the keys: holder, first characters, label, issued, revoked")
    revoke = sub.add_parser("revoke", help="revoke the keys starting with PREFIX (as `keys list` shows)")
    revoke.add_argument("prefix", help="the first characters of the key (as `keys list` shows them)")


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    migrations.upgrade(settings.directory_url)
    engine = create_engine(settings.directory_url)
    try:
        with Session(engine) as s, s.begin():
            if args.action == "issue":
                try:
                    key = share.issue_key(s, args.department, admin=args.admin, label=args.label)
                except share.ShareError as exc:
                    return fail("keys", exc)
                holder = "admin" if args.admin else args.department
                print(f"key for {holder} (shown once; store it now): {key}")
            elif args.action == "list":
                for k in s.scalars(select(ApiKey).order_by(ApiKey.id)):
                    state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "live"
                    print(f"{k.key_prefix}…  {k.holder:<10} {state:<24} issued {k.created_at:%Y-%m-%d %H:%M}"
                          f"  {k.label or ''}".rstrip())
            else:
                n = share.revoke_key(s, args.prefix)
                if not n:
                    return fail("keys", f"no live key starts with {args.prefix!r} (`citylake keys list`)")
                print(f"revoked {n} key{'s' if n > 1 else ''}")
    finally:
        engine.dispose()
    return 0
