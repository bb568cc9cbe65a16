"""The data service over real HTTP: `citylake serve` on a free loopback port, keys from `citylake keys`,
an httpx client. The whole request flow (ask → refused → approved → granted fields only, masked →
audited; or rejected → still refused), anonymous open data in every format with no personal field,
and the errors a client meets."""

from __future__ import annotations

import csv
import io
import json

import httpx
import pytest
from openpyxl import load_workbook

from citylake.core.registry import load_registrations
from citylake.stages import share
from tests.stages.test_query import curated_rows

API = "/api/v1"


def _client(base: str, key: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=base + API, headers=headers, timeout=60)


def _regs(settings):
    return {r.resource: r for r in load_registrations(settings.resources_dir)}


@pytest.mark.spark
def test_a_request_approved_gives_the_granted_fields_masked_and_every_call_is_audited(service):
    base, lake, keys, _ = service
    reg = _regs(lake)["resident_population"]
    mzj, gaj, scjg = _client(base, keys["mzj"]), _client(base, keys["gaj"]), _client(base, keys["scjg"])
    rows = f"/resources/{reg.resource}/rows"

    refused = mzj.get(rows)
    assert refused.status_code == 403 and "有条件共享" in refused.json()["error"]
    asked = mzj.post("/requests", json={"resource": reg.resource, "fields": ["cn_id", "person_name", "gender"],
                                        "purpose": "最低生活保障资格核查"})
    assert asked.status_code == 201, asked.text
    req = asked.json()
    assert (req["status"], req["provider"], req["consumer"]) == ("pending", "gaj", "mzj")
    pending = mzj.get(rows)
    assert pending.status_code == 403 and f"request {req['id']} is pending" in pending.json()["error"]
    assert [r["id"] for r in gaj.get("/requests", params={"role": "provider"}).json()["requests"]] == [req["id"]]
    assert scjg.get("/requests", params={"role": "provider"}).json()["requests"] == []

    # only the provider (or an administrator) decides
    other = scjg.post(f"/requests/{req['id']}/approve")
    assert other.status_code == 403 and "decided by its provider (gaj)" in other.json()["error"]
    assert gaj.post(f"/requests/{req['id']}/approve", json={"reason": "职能相符"}).json()["status"] == "approved"
    assert gaj.post(f"/requests/{req['id']}/approve").status_code == 409

    page = mzj.get(rows, params={"limit": 7, "offset": 3})
    assert page.status_code == 200, page.text
    body = page.json()
    assert body["basis"] == "grant" and body["fields"] == ["cn_id", "person_name", "gender"]
    assert body["total"] == curated_rows(lake, reg) and len(body["rows"]) == 7
    assert all(set(r) == {"cn_id", "person_name", "gender"} for r in body["rows"])
    assert all("*" in r["cn_id"] and "*" in r["person_name"] for r in body["rows"])
    everything = mzj.get(rows, params={"limit": 1000}).json()["rows"]
    assert everything[3:10] == body["rows"], "pages are stable slices of one order"
    women = mzj.get(rows, params={"gender": "2", "limit": 1000}).json()
    assert women["total"] == sum(r["gender"] == "2" for r in everything) == len(women["rows"])
    bad = mzj.get(rows, params={"address": "x"})
    assert bad.status_code == 400 and "cannot filter on address" in bad.json()["error"]

    # the provider sees the calls on its resources; another provider does not
    audit = gaj.get("/audit").json()["entries"]
    mine = [e for e in audit if e["caller"] == "mzj" and e["action"] == "rows"]
    assert [e["rows"] for e in mine][:3] == [len(women["rows"]), 1000 if len(everything) >= 1000 else len(everything), 7]
    assert all(e["grant_id"] == req["id"] and e["fields"] == ["cn_id", "person_name", "gender"]
               and e["resource"] == reg.resource and e["basis"] == "grant" for e in mine)
    assert all(e["provider"] == "scjg" for e in scjg.get("/audit").json()["entries"])
    assert _client(base, keys["admin"]).get("/audit").json()["entries"][0]["caller"] == "mzj"


@pytest.mark.spark
def test_a_rejected_request_leaves_the_department_refused(service):
    base, _, keys, _ = service
    rsj, gaj = _client(base, keys["rsj"]), _client(base, keys["gaj"])
    req = rsj.post("/requests", json={"resource": "resident_population", "purpose": "参保核查"}).json()
    assert gaj.post(f"/requests/{req['id']}/reject", json={}).status_code == 400  # a rejection says why
    assert gaj.post(f"/requests/{req['id']}/reject", json={"reason": "用途超出共享条件"}).json()["status"] == "rejected"
    refused = rsj.get("/resources/resident_population/rows")
    assert refused.status_code == 403 and "rejected: 用途超出共享条件" in refused.json()["error"]
    assert not [e for e in gaj.get("/audit").json()["entries"] if e["caller"] == "rsj"]


@pytest.mark.spark
def test_a_grant_may_show_personal_fields_in_the_clear_and_the_owner_sees_its_own(service):
    base, _lake, keys, _ = service
    mzj, gaj = _client(base, keys["mzj"]), _client(base, keys["gaj"])
    req = mzj.post("/requests", json={"resource": "resident_population", "fields": ["cn_id", "gender"],
                                      "unmasked": ["cn_id"], "purpose": "救助对象身份核验"}).json()
    gaj.post(f"/requests/{req['id']}/approve")
    rows = mzj.get("/resources/resident_population/rows", params={"limit": 50}).json()
    assert rows["unmasked"] == ["cn_id"] and rows["fields"] == ["cn_id", "gender"]
    assert all(len(r["cn_id"]) == 18 and "*" not in r["cn_id"] for r in rows["rows"])
    own = gaj.get("/resources/resident_population/rows", params={"limit": 50}).json()
    assert own["basis"] == "own" and "mobile" in own["fields"] and "*" not in own["rows"][0]["cn_id"]
    wrong = mzj.post("/requests", json={"resource": "resident_population", "fields": ["gender"],
                                        "unmasked": ["gender"], "purpose": "x"})
    assert wrong.status_code == 400 and "only requested personal fields" in wrong.json()["error"]


@pytest.mark.spark
def test_the_public_sees_open_resources_and_their_public_fields_only(service):
    base, lake, _, _ = service
    regs = _regs(lake)
    public = _client(base)
    catalog = public.get("/catalog").json()
    assert catalog["caller"] == "public"
    assert {e["resource"] for e in catalog["entries"]} == {r.resource for r in regs.values() if share.is_open(r)}
    er = regs["enterprise_registration"]
    opened = share.open_fields(er)
    personal = set(share.personal_fields(er))
    assert opened and not personal & set(opened)
    rows = public.get("/open/enterprise_registration/rows", params={"limit": 5}).json()
    assert rows["fields"] == opened and len(rows["rows"]) == 5 and rows["total"] == curated_rows(lake, er)
    for fmt in ("csv", "json", "xlsx"):
        got = public.get("/open/enterprise_registration/download", params={"format": fmt})
        assert got.status_code == 200, got.text
        if fmt == "csv":
            header, *lines = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
        elif fmt == "json":
            records = json.loads(got.content)
            header, lines = list(records[0]), records
        else:
            sheet = load_workbook(io.BytesIO(got.content), read_only=True).worksheets[0]
            header, *lines = [list(r) for r in sheet.iter_rows(values_only=True)]
        assert header == opened and len(lines) == curated_rows(lake, er), fmt
    for path in ("/open/resident_population/rows", "/open/resident_population/download", "/open/nothing/rows"):
        assert public.get(path).status_code == 404, path
    for path in ("/resources/enterprise_registration/rows", "/audit", "/requests"):
        answer = public.get(path)
        assert answer.status_code == 401 and "needs a key" in answer.json()["error"], path
    assert _client(base, "clk_not-a-key").get("/catalog").status_code == 401


@pytest.mark.spark
def test_a_department_sees_every_entry_with_its_share_type_and_what_it_may_do(service):
    base, lake, keys, _ = service
    entries = {e["resource"]: e for e in _client(base, keys["scjg"]).get("/catalog").json()["entries"]}
    assert set(entries) == {r.resource for r in _regs(lake).values()}
    assert entries["enterprise_registration"]["access"] == "own"
    assert entries["air_quality_hourly"]["access"] == "unconditional"
    assert entries["resident_population"]["access"] == "request"
    assert entries["resident_population"]["share_type"] == "有条件共享"
