"""The access rules (citylake/access.py) and their renderings; no server needed.

The committed MinIO artefacts under deploy/minio/ must be exactly what access.py renders, so a
rule cannot be changed (or a department added) in one place only. Regenerate with
``.venv/bin/python -m citylake.core.access``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from citylake.core import access
from citylake.core.registry import BASE_NAMESPACE
from citylake.core.settings import REPO_ROOT

MINIO_DIR = REPO_ROOT / "deploy" / "minio"
REGENERATE = (
    "out of date with citylake/access.py: run `.venv/bin/python -m citylake.core.access` and commit deploy/minio/"
)


def test_departments_are_the_registration_folders():
    expected = sorted(p.parent.name for p in (REPO_ROOT / "registrations").glob("*/*.yaml")
                      if p.parent.name != BASE_NAMESPACE)
    assert access.departments() == sorted(set(expected))
    assert {"scjg", "gaj", "gjj", "zrzy", "sthj"} <= set(access.departments())


def test_liaison_rules_are_exactly_own_landing_and_own_receipts():
    assert access.grants("liaison-scjg") == [
        access.Grant("landing/scjg/", list=True, read=True, write=True),
        access.Grant("receipts/scjg/", list=True, read=True, write=False),
    ]


def test_analyst_reads_only_the_curated_and_base_table_folders():
    rules = access.grants("analyst")
    assert rules == [access.Grant(f"warehouse/{ns}/", list=True, read=True)
                     for ns in sorted({*access.departments(), "base"})]
    assert not any(g.write for g in rules)
    # the standardized tables hold personal fields unmasked; raw and quarantine hold the drops
    assert not any(g.prefix.startswith(("warehouse/standardized", "raw", "standardized", "quarantine", "landing"))
                   for g in rules)


def test_the_steward_reads_what_the_analyst_reads_and_the_standardized_tables():
    rules = access.grants("steward")
    assert rules == [*access.grants("analyst"), access.Grant("warehouse/standardized/", list=True, read=True)]
    assert not any(g.write for g in rules)
    assert not any(g.prefix.startswith(("raw", "standardized", "quarantine", "landing", "receipts")) for g in rules)


def test_roles_are_defined_once_and_the_default_masks():
    assert access.role() is access.ROLES[access.DEFAULT_ROLE]
    assert not access.role().unmasked and access.role().identity == access.ANALYST
    steward = access.role("steward")
    assert steward.unmasked and steward.identity == access.STEWARD
    for r in access.ROLES.values():  # every role's reads go through an identity with grants
        assert access.grants(r.identity)
        # a role that shows personal fields needs an identity that may read where they are kept
        assert r.unmasked == any(g.prefix == "warehouse/standardized/" for g in access.grants(r.identity))
    with pytest.raises(ValueError, match="unknown role"):
        access.role("admin")


def test_pipeline_has_the_whole_bucket():
    assert access.grants("pipeline") == [access.Grant("", list=True, read=True, write=True)]


@pytest.mark.parametrize("bad", ["admin", "liaison-", "liaison-../raw", "liaison-SCJG", "scjg"])
def test_unknown_or_unsafe_identities_are_refused(bad):
    with pytest.raises(ValueError):
        access.grants(bad)


def test_minio_liaison_policy():
    assert access.minio_policy("scjg") == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ListOwnPrefixes",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": ["arn:aws:s3:::lake"],
                "Condition": {
                    "StringLike": {
                        "s3:prefix": ["landing/scjg/", "landing/scjg/*", "receipts/scjg/", "receipts/scjg/*"]
                    }
                },
            },
            {
                "Sid": "LocateBucket",
                "Effect": "Allow",
                "Action": ["s3:GetBucketLocation"],
                "Resource": ["arn:aws:s3:::lake"],
            },
            {
                "Sid": "ReadObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": ["arn:aws:s3:::lake/landing/scjg/*", "arn:aws:s3:::lake/receipts/scjg/*"],
            },
            {
                "Sid": "WriteObjects",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
                "Resource": ["arn:aws:s3:::lake/landing/scjg/*"],
            },
        ],
    }


@pytest.mark.parametrize("dept", access.departments())
def test_no_liaison_policy_reaches_beyond_its_department(dept):
    own = (f"arn:aws:s3:::lake/landing/{dept}/", f"arn:aws:s3:::lake/receipts/{dept}/")
    for st in access.minio_policy(dept)["Statement"]:
        assert st["Effect"] == "Allow"
        assert not any("*" in a for a in st["Action"]), "no wildcard actions for liaisons"
        for res in st["Resource"]:
            if res == "arn:aws:s3:::lake":  # bucket-level: listing is prefix-conditioned
                if "s3:ListBucket" in st["Action"]:
                    prefixes = st["Condition"]["StringLike"]["s3:prefix"]
                    assert all(p.startswith((f"landing/{dept}/", f"receipts/{dept}/")) for p in prefixes)
                else:
                    assert st["Action"] == ["s3:GetBucketLocation"]
            else:
                assert res.startswith(own), res
                if res.startswith(own[1]):
                    assert st["Action"] == ["s3:GetObject"], "receipts are read-only"


def test_pipeline_policy_is_the_lake_bucket_only():
    doc = access.minio_pipeline_policy()
    assert [r for st in doc["Statement"] for r in st["Resource"]] == ["arn:aws:s3:::lake", "arn:aws:s3:::lake/*"]


def test_seaweed_identities():
    doc = access.seaweed_identities({"pipeline": ("PK", "PS"), "liaison-scjg": ("SK", "SS")}, admin=("AK", "AS"))
    by_name = {i["name"]: i for i in doc["identities"]}
    assert by_name["liaison-scjg"] == {
        "name": "liaison-scjg",
        "credentials": [{"accessKey": "SK", "secretKey": "SS"}],
        "actions": [
            "List:lake/landing/scjg/*",
            "Read:lake/landing/scjg/*",
            "Write:lake/landing/scjg/*",
            "List:lake/receipts/scjg/*",
            "Read:lake/receipts/scjg/*",
        ],
    }
    assert by_name["pipeline"]["actions"] == ["List:lake", "Read:lake", "Write:lake", "Tagging:lake"]
    assert "Admin" in by_name["admin"]["actions"]
    assert "Admin" not in by_name["pipeline"]["actions"]


def test_committed_minio_policies_match_access_rules():
    rendered = access.render_minio_artifacts()
    committed = {
        f"policies/{p.name}": p.read_text(encoding="utf-8") for p in sorted((MINIO_DIR / "policies").glob("*.json"))
    }
    expected = {k: v for k, v in rendered.items() if k.startswith("policies/")}
    assert sorted(committed) == sorted(expected), REGENERATE
    for name, text in expected.items():
        assert json.loads(committed[name]) == json.loads(text), f"{name} {REGENERATE}"
        assert committed[name] == text, f"{name} {REGENERATE}"


def test_committed_init_script_matches_access_rules():
    script = MINIO_DIR / "init.sh"
    assert script.read_text(encoding="utf-8") == access.render_minio_artifacts()["init.sh"], REGENERATE
    assert script.stat().st_mode & 0o111, "deploy/minio/init.sh must be executable"


def test_init_script_creates_every_user_with_its_policy():
    text = access.render_init_script(access.departments())
    assert 'mc mb --ignore-existing "citylake/$BUCKET"' in text
    assert 'add_user "$CITYLAKE_S3_ACCESS_KEY" "$CITYLAKE_S3_SECRET_KEY" citylake-pipeline' in text
    assert 'add_user analyst "${CITYLAKE_ANALYST_SECRET:-}" citylake-analyst' in text
    assert 'add_user steward "${CITYLAKE_STEWARD_SECRET:-}" citylake-steward' in text
    for dept in access.departments():
        assert f'add_user liaison-{dept} "${{{access.liaison_secret_env(dept)}:-}}" citylake-liaison-{dept}' in text
        assert f'apply_policy citylake-liaison-{dept} "$POLICY_DIR/citylake-liaison-{dept}.json"' in text


def test_write_minio_artifacts_removes_stale_departments(tmp_path: Path):
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "citylake-liaison-gone.json").write_text("{}")
    written = access.write_minio_artifacts(tmp_path, depts=["scjg"])
    assert sorted(p.name for p in (tmp_path / "policies").iterdir()) == [
        "citylake-analyst.json",
        "citylake-liaison-scjg.json",
        "citylake-pipeline.json",
        "citylake-steward.json",
    ]
    analyst = json.loads((tmp_path / "policies" / "citylake-analyst.json").read_text())
    [read] = [st for st in analyst["Statement"] if st["Sid"] == "ReadObjects"]
    assert read["Resource"] == ["arn:aws:s3:::lake/warehouse/base/*", "arn:aws:s3:::lake/warehouse/scjg/*"]
    assert not [st for st in analyst["Statement"] if st["Sid"] == "WriteObjects"]
    assert tmp_path / "init.sh" in written
