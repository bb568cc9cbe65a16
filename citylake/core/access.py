"""Who may touch which part of the lake: the access rules, in one place.

Identities
----------
* **pipeline** — the services (Airflow tasks, Spark jobs, the catalogue publisher): full access to
  the lake bucket, nothing else.
* **analyst** (分析人员, and the BI endpoint ``citylake sql-server`` that runs as it): may list and read
  only the curated and base-library tables' files (``warehouse/<dept>/``, ``warehouse/base/``) — never
  raw, standardized (``warehouse/standardized/``), quarantine, quality, landing or receipts, and never
  write. Curated tables hold personal fields masked, so this identity never meets an unmasked one.
* **steward** (数据管理人员, holding the centre's authorisation to see personal information): what
  the analyst reads, plus the standardized tables (``warehouse/standardized/``), read-only — the
  rows curated masks come from, so a steward's query can show personal fields in the clear. Never
  raw, quarantine, landing or receipts, and never write.
* **liaison-<dept>** (部门联络员), one per department that has registrations under
  ``registrations/<dept>/``: may list, read and write (create, overwrite, delete their own drops)
  only under ``landing/<dept>/``, and list and read only under ``receipts/<dept>/``. Nothing else —
  not another department's landing area or receipts, not raw, standardized, quarantine, quality or
  curated.

The rules are data (:func:`grants`); everything else renders them:

* :data:`ROLES` — the roles people query as (``citylake query --role``, and the sharing service's
  grants), each with the storage identity its reads go through and whether it sees personal fields
  unmasked; :data:`DEFAULT_ROLE` masks;

* :func:`minio_policy` / :func:`minio_pipeline_policy` — IAM-style policy documents for MinIO
  (production, applied by ``deploy/minio/init.sh`` in the compose stack);
* :func:`seaweed_identities` — the ``-s3.config`` identities file of the SeaweedFS test server;
* :func:`write_minio_artifacts` — writes ``deploy/minio/policies/*.json`` and ``deploy/minio/init.sh``.
  ``tests/s3/test_access_rules.py`` fails if the committed files differ from what this module renders, so
  the rules cannot be changed in one place only. Regenerate with
  ``python -m citylake.core.access`` after changing the rules or adding a department.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from citylake.core.registry import BASE_NAMESPACE
from citylake.core.settings import REPO_ROOT
from citylake.core.tables import STANDARDIZED_NAMESPACE
from citylake.core.zones import WAREHOUSE_DIR

DEFAULT_BUCKET = "lake"
PIPELINE = "pipeline"
ANALYST = "analyst"
STEWARD = "steward"
LIAISON_PREFIX = "liaison-"
DEPT_RE = re.compile(r"^[a-z][a-z0-9_]{1,30}$")

# Abstract permissions -> the S3 object actions they allow (MinIO / AWS IAM vocabulary).
#   list  : ListBucket restricted to the prefix (see minio_policy)
#   read  : GetObject (also answers HEAD)
#   write : PutObject (create and overwrite, incl. multipart), DeleteObject, abort own multipart
READ_ACTIONS = ("s3:GetObject",)
WRITE_ACTIONS = ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")


@dataclass(frozen=True)
class Grant:
    """Permissions on every key under ``prefix`` ("" = the whole bucket)."""

    prefix: str
    list: bool = False
    read: bool = False
    write: bool = False


def departments(resources_dir: Path | str | None = None) -> list[str]:
    """Departments that have at least one registration (``registrations/<dept>/*.yaml``)."""
    base = Path(resources_dir) if resources_dir else REPO_ROOT / "registrations"
    # registrations/base/ holds the base libraries, which the centre builds: no department, no liaison
    depts = sorted(p.name for p in base.iterdir()
                   if p.is_dir() and p.name != BASE_NAMESPACE and any(p.glob("*.yaml")))
    for dept in depts:
        _check_dept(dept)
    return depts


def _check_dept(dept: str) -> None:
    if not DEPT_RE.match(dept):
        raise ValueError(f"department code {dept!r} is not a safe identifier (expected {DEPT_RE.pattern})")


def liaison_user(dept: str) -> str:
    _check_dept(dept)
    return f"{LIAISON_PREFIX}{dept}"


def liaison_grants(dept: str) -> list[Grant]:
    _check_dept(dept)
    return [
        Grant(f"landing/{dept}/", list=True, read=True, write=True),
        Grant(f"receipts/{dept}/", list=True, read=True),
    ]


def pipeline_grants() -> list[Grant]:
    return [Grant("", list=True, read=True, write=True)]


def analyst_grants(depts: Iterable[str] | None = None) -> list[Grant]:
    """Read-only on the table folders analysts may query: each department's curated namespace and
    the base libraries'. The standardized namespace is left out: it holds personal fields unmasked."""
    depts = departments() if depts is None else list(depts)
    for dept in depts:
        _check_dept(dept)
    namespaces = sorted({*depts, BASE_NAMESPACE})
    return [Grant(f"{WAREHOUSE_DIR}/{ns}/", list=True, read=True) for ns in namespaces]


def steward_grants(depts: Iterable[str] | None = None) -> list[Grant]:
    """The analyst's grants and read-only on the standardized tables, where the personal fields that
    curated masks are kept in the clear."""
    return [*analyst_grants(depts), Grant(f"{WAREHOUSE_DIR}/{STANDARDIZED_NAMESPACE}/", list=True, read=True)]


def grants(identity: str) -> list[Grant]:
    """The grants of ``pipeline``, ``analyst``, ``steward`` or ``liaison-<dept>``."""
    if identity == PIPELINE:
        return pipeline_grants()
    if identity == ANALYST:
        return analyst_grants()
    if identity == STEWARD:
        return steward_grants()
    if identity.startswith(LIAISON_PREFIX):
        return liaison_grants(identity[len(LIAISON_PREFIX) :])
    raise ValueError(f"unknown identity {identity!r}")


# ---- roles: who queries, and what they see ------------------------------------------------------
@dataclass(frozen=True)
class Role:
    """A role people query the lake as.

    ``identity`` is the storage identity the role's reads go through (its grants above): on an S3 lake
    a caller holds a role by holding that identity's keys, and a role's query cannot read more than
    they allow. ``unmasked``: personal fields are shown in the clear (taken from the standardized row
    each curated row came from); otherwise as curated masks them. Restricted fields are never shown."""

    name: str
    title: str
    identity: str
    unmasked: bool
    description: str


ROLES: dict[str, Role] = {r.name: r for r in (
    Role(ANALYST, "数据分析人员", ANALYST, False,
         "curated tables, base libraries and reference tables; personal fields masked"),
    Role(STEWARD, "数据管理人员（经授权可见个人信息）", STEWARD, True,
         "the analyst's tables, with the personal fields of curated tables in the clear"),
)}
DEFAULT_ROLE = ANALYST  # masked unless a caller asks for, and holds, another role


def role(name: str | None = None) -> Role:
    """The role ``name`` (the default role when None); a ValueError naming the roles otherwise."""
    name = name or DEFAULT_ROLE
    if name not in ROLES:
        raise ValueError(f"unknown role {name!r}; roles: {', '.join(sorted(ROLES))}")
    return ROLES[name]


# ---- MinIO (production) ------------------------------------------------------------------------
def _statements(bucket: str, rules: Iterable[Grant]) -> list[dict]:
    statements: list[dict] = []
    rules = list(rules)
    listed = [g.prefix for g in rules if g.list]
    if listed:
        list_stmt: dict = {
            "Sid": "ListOwnPrefixes",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [f"arn:aws:s3:::{bucket}"],
        }
        if "" not in listed:
            list_stmt["Condition"] = {
                "StringLike": {"s3:prefix": [p for prefix in listed for p in (prefix, f"{prefix}*")]}
            }
        statements.append(list_stmt)
        statements.append(
            {
                "Sid": "LocateBucket",
                "Effect": "Allow",
                "Action": ["s3:GetBucketLocation"],
                "Resource": [f"arn:aws:s3:::{bucket}"],
            }
        )
    for kind, actions in (("read", READ_ACTIONS), ("write", WRITE_ACTIONS)):
        prefixes = [g.prefix for g in rules if getattr(g, kind)]
        if prefixes:
            statements.append(
                {
                    "Sid": "ReadObjects" if kind == "read" else "WriteObjects",
                    "Effect": "Allow",
                    "Action": list(actions),
                    "Resource": [f"arn:aws:s3:::{bucket}/{p}*" for p in prefixes],
                }
            )
    return statements


def minio_policy(dept: str, bucket: str = DEFAULT_BUCKET) -> dict:
    """IAM-style policy for a department liaison (MinIO ``mc admin policy create``)."""
    return {"Version": "2012-10-17", "Statement": _statements(bucket, liaison_grants(dept))}


def minio_analyst_policy(depts: Iterable[str] | None = None, bucket: str = DEFAULT_BUCKET) -> dict:
    """The analysts' (and the BI endpoint's) policy: read the curated and base tables only."""
    return {"Version": "2012-10-17", "Statement": _statements(bucket, analyst_grants(depts))}


def minio_steward_policy(depts: Iterable[str] | None = None, bucket: str = DEFAULT_BUCKET) -> dict:
    """The stewards' policy: the analysts' and read on the standardized tables."""
    return {"Version": "2012-10-17", "Statement": _statements(bucket, steward_grants(depts))}


def minio_pipeline_policy(bucket: str = DEFAULT_BUCKET) -> dict:
    """The pipeline's policy: everything on the lake bucket (and nothing on other buckets)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "LakeBucket",
                "Effect": "Allow",
                "Action": ["s3:*"],
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            }
        ],
    }


def policy_name(identity: str) -> str:
    return f"citylake-{identity}"


# ---- SeaweedFS (tests) -------------------------------------------------------------------------
def _seaweed_actions(bucket: str, rules: Iterable[Grant]) -> list[str]:
    actions: list[str] = []
    for g in rules:
        target = f"{bucket}/{g.prefix}*" if g.prefix else bucket
        if g.list:
            actions.append(f"List:{target}")
        if g.read:
            actions.append(f"Read:{target}")
        if g.write:
            actions.append(f"Write:{target}")
        if not g.prefix and g.write:
            actions.append(f"Tagging:{target}")
    return actions


def seaweed_identities(
    credentials: Mapping[str, tuple[str, str]],
    bucket: str = DEFAULT_BUCKET,
    admin: tuple[str, str] | None = None,
) -> dict:
    """SeaweedFS ``-s3.config`` document.

    ``credentials`` maps identity names (``pipeline``, ``liaison-<dept>``) to (access key, secret);
    ``admin`` (optional) is a server-wide admin that may create buckets — used only by the test
    fixture to set the server up, never by the code under test.
    """
    identities = []
    if admin:
        identities.append(
            {
                "name": "admin",
                "credentials": [{"accessKey": admin[0], "secretKey": admin[1]}],
                "actions": ["Admin", "Read", "List", "Write", "Tagging"],
            }
        )
    for name, (access_key, secret_key) in credentials.items():
        identities.append(
            {
                "name": name,
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": _seaweed_actions(bucket, grants(name)),
            }
        )
    return {"identities": identities}


# ---- MinIO init artefacts (deploy/minio) -------------------------------------------------------
MINIO_DIR = REPO_ROOT / "deploy" / "minio"


# The analyst user's secret key in .env (its access key is its name, "analyst").
ANALYST_SECRET_ENV = f"CITYLAKE_{ANALYST.upper()}_SECRET"
STEWARD_SECRET_ENV = f"CITYLAKE_{STEWARD.upper()}_SECRET"


def liaison_secret_env(dept: str) -> str:
    """Environment variable (in ``.env``) holding a liaison's secret key."""
    _check_dept(dept)
    return f"CITYLAKE_LIAISON_{dept.upper()}_SECRET"


def render_minio_policies(depts: Iterable[str], bucket: str = DEFAULT_BUCKET) -> dict[str, dict]:
    """File name -> policy document, for ``deploy/minio/policies/``."""
    depts = list(depts)
    out = {
        f"{policy_name(PIPELINE)}.json": minio_pipeline_policy(bucket),
        f"{policy_name(ANALYST)}.json": minio_analyst_policy(depts, bucket),
        f"{policy_name(STEWARD)}.json": minio_steward_policy(depts, bucket),
    }
    for dept in depts:
        out[f"{policy_name(liaison_user(dept))}.json"] = minio_policy(dept, bucket)
    return out


def render_init_script(depts: Iterable[str]) -> str:
    depts = list(depts)
    lines = [
        "#!/bin/sh",
        "# GENERATED by citylake/core/access.py (python -m citylake.core.access) -- do not edit by hand.",
        "# Creates the lake bucket, the pipeline and department-liaison users and their policies",
        "# in MinIO. Idempotent: safe to run on every `docker compose up`.",
        "# Needs: MINIO_URL, MINIO_ROOT_USER, MINIO_ROOT_PASSWORD, CITYLAKE_BUCKET,",
        "#        CITYLAKE_S3_ACCESS_KEY / CITYLAKE_S3_SECRET_KEY (pipeline), " + ANALYST_SECRET_ENV + " (analyst),",
        "#        " + STEWARD_SECRET_ENV + " (steward),",
        "#        " + ", ".join(liaison_secret_env(d) for d in depts) + ".",
        "set -eu",
        'POLICY_DIR="${POLICY_DIR:-$(dirname "$0")/policies}"',
        'BUCKET="${CITYLAKE_BUCKET:-' + DEFAULT_BUCKET + '}"',
        "",
        'until mc alias set citylake "$MINIO_URL" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null; do',
        '  echo "waiting for MinIO at $MINIO_URL"; sleep 2',
        "done",
        'mc mb --ignore-existing "citylake/$BUCKET"',
        "",
        "# policy files name the bucket 'lake'; render them for the configured bucket",
        "apply_policy() { # name file",
        '  sed "s#arn:aws:s3:::' + DEFAULT_BUCKET + '#arn:aws:s3:::$BUCKET#g" "$2" > "/tmp/$1.json"',
        '  mc admin policy create citylake "$1" "/tmp/$1.json"',
        "}",
        "",
        "add_user() { # user secret policy",
        '  if [ -z "$2" ]; then echo "secret for user $1 is empty (see .env.example)" >&2; exit 1; fi',
        '  mc admin user add citylake "$1" "$2"',
        '  if ! mc admin user info citylake "$1" --json | grep -q "\\"$3\\""; then',
        '    mc admin policy attach citylake "$3" --user "$1"',
        "  fi",
        "}",
        "",
        f'apply_policy {policy_name(PIPELINE)} "$POLICY_DIR/{policy_name(PIPELINE)}.json"',
        f'add_user "$CITYLAKE_S3_ACCESS_KEY" "$CITYLAKE_S3_SECRET_KEY" {policy_name(PIPELINE)}',
        "",
        "# analyst (and the BI endpoint, citylake sql-server): list/read the curated and base tables only",
        f'apply_policy {policy_name(ANALYST)} "$POLICY_DIR/{policy_name(ANALYST)}.json"',
        f'add_user {ANALYST} "${{{ANALYST_SECRET_ENV}:-}}" {policy_name(ANALYST)}',
        "",
        "# steward (authorised to see personal information): the analyst's reads and the standardized tables",
        f'apply_policy {policy_name(STEWARD)} "$POLICY_DIR/{policy_name(STEWARD)}.json"',
        f'add_user {STEWARD} "${{{STEWARD_SECRET_ENV}:-}}" {policy_name(STEWARD)}',
    ]
    for dept in depts:
        user = liaison_user(dept)
        lines += [
            "",
            f"# {dept}: list/read/write landing/{dept}/, list/read receipts/{dept}/",
            f'apply_policy {policy_name(user)} "$POLICY_DIR/{policy_name(user)}.json"',
            f'add_user {user} "${{{liaison_secret_env(dept)}:-}}" {policy_name(user)}',
        ]
    lines += ["", f'echo "MinIO ready: bucket $BUCKET, users: pipeline, {ANALYST}, {STEWARD}, ' + " ".join(
        liaison_user(d) for d in depts) + '"', ""]
    return "\n".join(lines)


def render_minio_artifacts(
    depts: Iterable[str] | None = None, bucket: str = DEFAULT_BUCKET
) -> dict[str, str]:
    """Relative path under ``deploy/minio`` -> file content."""
    depts = departments() if depts is None else list(depts)
    files = {
        f"policies/{name}": json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
        for name, doc in render_minio_policies(depts, bucket).items()
    }
    files["init.sh"] = render_init_script(depts)
    return files


def write_minio_artifacts(out_dir: Path | str = MINIO_DIR, depts: Iterable[str] | None = None) -> list[Path]:
    """(Re)write ``deploy/minio/policies/*.json`` and ``deploy/minio/init.sh``; stale policy files
    of departments that no longer exist are removed."""
    out_dir = Path(out_dir)
    files = render_minio_artifacts(depts)
    (out_dir / "policies").mkdir(parents=True, exist_ok=True)
    for stale in (out_dir / "policies").glob("*.json"):
        if f"policies/{stale.name}" not in files:
            stale.unlink()
    written = []
    for rel, content in files.items():
        path = out_dir / rel
        path.write_text(content, encoding="utf-8")
        if rel.endswith(".sh"):
            path.chmod(0o755)
        written.append(path)
    return written


if __name__ == "__main__":  # python -m citylake.core.access
    for p in write_minio_artifacts():
        print(p.relative_to(REPO_ROOT))
