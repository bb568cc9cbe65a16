"""The liaison's rejected rows over real HTTP (`citylake serve`, citylake.drivers.service.quarantine):
the owning department downloads its quarantined rows as XLSX (exact duplicates left out) and the
download is audited; another department is refused (403), the public needs a key (401)."""

from __future__ import annotations

import io

import httpx
import pytest
from openpyxl import load_workbook

from citylake.core.ledger import Ledger
from citylake.core.registry import load_registrations
from citylake.stages import rejects

API = "/api/v1"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _client(base: str, key: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=base + API, headers=headers, timeout=60)


def _expected(settings) -> tuple[list[str], int]:
    """The batches of resident_population with quarantined rows, and the rows to correct (all
    quarantined rows but the exact duplicates), from the ledger."""
    reg = next(r for r in load_registrations(settings.resources_dir) if r.resource == "resident_population")
    batches = [b for b in Ledger.read(settings, reg).batches if b.rows_quarantined]
    duplicates = sum(b.quarantine_reasons.get("duplicate_row", 0) for b in batches)
    quarantined = sum(b.rows_quarantined for b in batches)
    assert batches and quarantined > duplicates > 0, "the generated drop has bad rows and exact duplicates"
    return [b.batch_id for b in batches], quarantined - duplicates


def _rows(body: bytes) -> list[list]:
    wb = load_workbook(io.BytesIO(body), read_only=True)
    assert wb.sheetnames == [rejects.ROWS_SHEET, rejects.HELP_SHEET]
    header, *rows = [list(r) for r in wb[rejects.ROWS_SHEET].iter_rows(values_only=True)]
    assert header[:3] == ["批次", "源文件行号", "公民身份号码"] and header[-3:-1] == ["问题说明", "可选值"]
    return rows


@pytest.mark.spark
def test_the_department_downloads_its_rejected_rows_and_the_download_is_audited(service):
    base, lake, keys, _ = service
    batch_ids, to_correct = _expected(lake)
    gaj = _client(base, keys["gaj"])

    listed = gaj.get("/quarantine")
    assert listed.status_code == 200, listed.text
    (entry,) = listed.json()["resources"]
    assert entry["resource"] == "resident_population" and entry["download"] == f"{API}/quarantine/resident_population.xlsx"
    assert [b["batch_id"] for b in entry["batches"]] == batch_ids
    assert sum(b["to_correct"] for b in entry["batches"]) == to_correct
    assert all(b["received_at"].endswith("+08:00") for b in entry["batches"])

    got = gaj.get("/quarantine/resident_population.xlsx")
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == XLSX
    assert got.headers["content-disposition"].startswith("attachment;")
    assert 'filename="resident_population-quarantine.xlsx"' in got.headers["content-disposition"]
    rows = _rows(got.content)
    assert len(rows) == to_correct
    assert {r[0] for r in rows} == set(batch_ids)

    one = gaj.get("/quarantine/resident_population.xlsx", params={"batch": batch_ids[0]})
    assert one.status_code == 200 and f"-{batch_ids[0]}.xlsx" in one.headers["content-disposition"]
    assert {r[0] for r in _rows(one.content)} == {batch_ids[0]}
    missing = gaj.get("/quarantine/resident_population.xlsx", params={"batch": "nothing"})
    assert missing.status_code == 404 and "no batch 'nothing'" in missing.json()["error"]

    audit = [e for e in gaj.get("/audit").json()["entries"] if e["action"] == "quarantine_download"]
    assert len(audit) == 2  # the refused one for an unknown batch is not a download
    assert all(e["caller"] == "gaj" and e["basis"] == "own" and e["resource"] == "resident_population"
               and e["provider"] == "gaj" and "cn_id" in e["fields"] for e in audit)
    assert audit[-1]["rows"] == to_correct

    admin = _client(base, keys["admin"]).get("/quarantine/resident_population.xlsx")
    assert admin.status_code == 200 and len(_rows(admin.content)) == to_correct
    assert {r["resource"] for r in _client(base, keys["admin"]).get("/quarantine").json()["resources"]} >= {
        "resident_population", "enterprise_registration"}


@pytest.mark.spark
def test_no_department_sees_another_departments_quarantine(service):
    base, _, keys, _ = service
    path = "/quarantine/resident_population.xlsx"
    for other in ("scjg", "mzj"):
        refused = _client(base, keys[other]).get(path)
        assert refused.status_code == 403, other
        assert "own department (gaj)" in refused.json()["error"]
    scjg = _client(base, keys["scjg"]).get("/quarantine").json()["resources"]
    assert [r["resource"] for r in scjg] == ["enterprise_registration"]
    assert _client(base, keys["mzj"]).get("/quarantine").json()["resources"] == []
    for anonymous in (path, "/quarantine"):
        answer = _client(base).get(anonymous)
        assert answer.status_code == 401 and "needs a key" in answer.json()["error"], anonymous
    assert _client(base, keys["gaj"]).get("/quarantine/nothing.xlsx").status_code == 404
    audited = _client(base, keys["admin"]).get("/audit", params={"limit": 1000}).json()["entries"]
    assert not [e for e in audited if e["action"] == "quarantine_download" and e["caller"] in ("scjg", "mzj")]
