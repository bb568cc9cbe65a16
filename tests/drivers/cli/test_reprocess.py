"""`citylake reprocess`: a batch blocked by the quality gate is promoted once the gate is relaxed;
the receipt says it was reprocessed and `status --history` shows what happened to it."""

from __future__ import annotations

import json
import shutil

import pytest

from citylake.core.lake import Lake
from citylake.core.ledger import Ledger
from citylake.core.registry import load_registrations
from citylake.core.settings import REPO_ROOT
from citylake_dev.generate import generate
from tests.drivers.cli.helpers import run

RESOURCE = "enterprise_registration"


def _gate(folder, min_rows: int) -> None:
    """The resource's quality gate, as a department's engineer would edit it."""
    path = folder / "scjg" / f"{RESOURCE}.yaml"
    text = path.read_text(encoding="utf-8").split("\nquality:")[0].rstrip("\n")
    path.write_text(f"{text}\nquality: {{min_rows: {min_rows}}}\n", encoding="utf-8")


@pytest.fixture
def own_registrations(env, tmp_path, monkeypatch):
    folder = tmp_path / "registrations"
    shutil.copytree(REPO_ROOT / "registrations", folder)
    monkeypatch.setenv("CITYLAKE_RESOURCES_DIR", str(folder))
    return folder


def test_reprocess_needs_to_be_told_which_batches(env, capsys):
    code, _, err = run(capsys, "reprocess", "--resource", RESOURCE)
    assert code == 2 and "say which batches: --batch ID, --refused, --failed or --blocked" in err
    code, _, err = run(capsys, "reprocess", "--resource", "enterprise", "--blocked")
    assert code == 2 and "unknown resource: enterprise; registered resources:" in err


@pytest.mark.spark
def test_a_blocked_batch_is_promoted_after_the_gate_is_relaxed(spark, env, own_registrations, capsys):
    _gate(own_registrations, min_rows=1_000_000)  # more rows than the drop has: the gate blocks
    reg = next(r for r in load_registrations(own_registrations) if r.resource == RESOURCE)
    [truth] = generate(env, [reg], rows=120, seed=3)["files"].values()
    code, out, err = run(capsys, "run", "--resource", RESOURCE, "--quiet")
    assert code == 0, err
    [batch] = Ledger.read(env, reg).batches
    assert batch.status == "blocked" and Ledger.read(env, reg).curated is None

    code, out, err = run(capsys, "reprocess", "--resource", RESOURCE, "--batch", batch.batch_id, "--quiet")
    # the gate is as strict as before: checked again, blocked again
    assert code == 0, err
    assert "0 passed, 1 blocked" in out and Ledger.read(env, reg).batches[0].status == "blocked"

    _gate(own_registrations, min_rows=1)
    code, out, err = run(capsys, "reprocess", "--resource", RESOURCE, "--blocked", "--quiet")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"{RESOURCE}  {batch.batch_id}  was blocked → check again"
    assert any(" check " in ln and "1 passed, 0 blocked" in ln for ln in lines)
    assert any(" curate " in ln and "merged 1 batch(es)" in ln for ln in lines)
    ledger = Ledger.read(env, reg)
    [after] = ledger.batches
    assert after.status == "curated" and ledger.curated["rows"] > 0
    assert after.rows_accepted + after.rows_quarantined == truth["rows"], "the same rows, checked again"
    assert [e["event"] for e in after.history] == ["received", "reprocess", "reprocess", "conformed", "passed",
                                                   "curated"]

    lake = Lake.from_settings(env)
    text = lake.read_bytes(f"receipts/scjg/{RESOURCE}/{batch.batch_id}.txt").decode()
    assert "重新处理：" in text and "数据中心重新处理" in text and "此前状态：质量检查未通过" in text
    assert "Reprocessed: " in text and "it was blocked" in text
    assert len(lake.list_files(f"receipts/scjg/{RESOURCE}/earlier")) == 4, "both earlier receipts are kept"

    code, out, _ = run(capsys, "status", "--resource", RESOURCE, "--history")
    assert code == 0 and "  reprocess  (was blocked" in out and "  passed  (pass_rate" in out
    code, out, _ = run(capsys, "status", "--resource", RESOURCE, "--json")
    [facts] = json.loads(out)
    assert [e["event"] for e in facts["batches"][0]["history"]][:3] == ["received", "reprocess", "reprocess"]

    code, out, err = run(capsys, "reprocess", "--resource", RESOURCE, "--batch", batch.batch_id)
    assert code == 2 and f"only a rejected, failed or blocked batch is reprocessed; {batch.batch_id} is curated" in err
    code, out, _ = run(capsys, "reprocess", "--resource", RESOURCE, "--blocked", "--refused")
    assert code == 0 and out.strip() == f"{RESOURCE}: no rejected or blocked batch to reprocess"
