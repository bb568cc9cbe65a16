"""The share rules (citylake.stages.share) without a server: keys, bases of access, requests."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from citylake.core.registry import ShareSpec, load_base_libraries, load_registrations
from citylake.core.settings import REPO_ROOT
from citylake.stages import share
from citylake.stages.publish import migrations
from citylake.stages.publish.models import ApiKey

REGS = {r.resource: r for r in load_registrations(REPO_ROOT / "registrations")}
LEGAL_BASIS = "依据《中华人民共和国个人信息保护法》第十三条，不予共享。"


@pytest.fixture
def session(tmp_path):
    url = f"sqlite:///{tmp_path / 'directory.db'}"
    migrations.upgrade(url)
    engine = create_engine(url)
    with Session(engine) as s, s.begin():
        yield s
    engine.dispose()


def _not_shared(resource: str):
    return REGS[resource].model_copy(update={"share": ShareSpec(type="不予共享", condition=LEGAL_BASIS)})


def test_only_the_digest_of_a_key_is_kept_and_a_revoked_key_opens_nothing(session):
    key = share.issue_key(session, "mzj", label="民政局 救助科")
    stored = session.scalars(select(ApiKey)).one()
    assert key.startswith("clk_") and len(key) > 40
    assert key not in (stored.key_hash, stored.key_prefix) and stored.key_hash == share.key_digest(key)
    assert share.find_key(session, key).holder == "mzj" and share.find_key(session, key + "x") is None
    assert share.revoke_key(session, stored.key_prefix) == 1
    assert share.find_key(session, key) is None
    for bad in ("admin", "public", "../gaj", "GAJ", ""):
        with pytest.raises(share.ShareError):
            share.issue_key(session, bad)
    assert share.find_key(session, share.issue_key(session, "", admin=True)).is_admin


def test_not_shared_resources_are_refused_with_their_legal_basis(session):
    reg = _not_shared("real_estate_registration")
    caller = share.Caller("mzj")
    for attempt in (lambda: share.access(session, caller, reg),
                    lambda: share.create_request(session, caller, reg, None, "核查")):
        with pytest.raises(share.Forbidden, match=r"不予共享.*第十三条"):
            attempt()
    # the provider still reads its own
    assert share.access(session, share.Caller(reg.department), reg).basis == "own"
    # and a not-shared resource is never open, whatever its registration says of opening
    assert not share.is_open(reg.model_copy(update={"open": REGS["enterprise_registration"].open}))


def test_unconditional_resources_need_no_request_and_come_masked(session):
    reg = REGS["air_quality_hourly"]
    acc = share.access(session, share.Caller("mzj"), reg)
    assert acc.basis == "无条件共享" and acc.unmasked == [] and acc.fields == share.shared_fields(reg)
    with pytest.raises(share.ShareError, match="no request is needed"):
        share.create_request(session, share.Caller("mzj"), reg, None, "空气质量评估")


def test_restricted_fields_are_never_shared_and_personal_ones_are_clear_only_to_their_owner(session):
    base = REGS["enterprise_registration"]
    reg = base.model_copy(update={"fields": [
        f.model_copy(update={"sensitivity": "restricted"}) if f.name == "address" else f for f in base.fields]})
    own = share.access(session, share.Caller(reg.department), reg)
    assert "address" not in own.fields and set(own.unmasked) == set(share.personal_fields(reg)) != set()
    with pytest.raises(share.ShareError, match="shares no field address"):
        share.create_request(session, share.Caller("mzj"), reg, ["uscc", "address"], "信用核查")
    req = share.create_request(session, share.Caller("mzj"), reg, None, "信用核查")
    assert "address" not in req.fields and req.fields == share.shared_fields(reg)
    for r in REGS.values():  # the public's fields are the public ones, in every registration
        assert set(share.open_fields(r)) == {f.name for f in r.fields if f.sensitivity == "public"}


def test_requests_are_checked_and_decided_by_the_provider_only(session):
    reg = REGS["resident_population"]
    mzj = share.Caller("mzj")
    with pytest.raises(share.ShareError, match="states its purpose"):
        share.create_request(session, mzj, reg, None, "  ")
    with pytest.raises(share.ShareError, match="shares no field nothing"):
        share.create_request(session, mzj, reg, ["nothing"], "核查")
    with pytest.raises(share.ShareError, match="your own department"):
        share.create_request(session, share.Caller("gaj"), reg, None, "核查")
    with pytest.raises(share.Forbidden):
        share.create_request(session, share.PUBLIC_CALLER, reg, None, "核查")
    req = share.create_request(session, mzj, reg, ["cn_id", "cn_id", "gender"], "低保核查")
    assert req.fields == ["cn_id", "gender"] and req.status == "pending"
    with pytest.raises(share.Forbidden, match="decided by its provider"):
        share.decide(session, mzj, req.id, True, None)
    assert share.decide(session, share.Caller("admin", is_admin=True), req.id, True, None).status == "approved"
    acc = share.access(session, mzj, reg)
    assert (acc.basis, acc.fields, acc.unmasked, acc.grant_id) == ("grant", ["cn_id", "gender"], [], req.id)
    # a later request still pending, or rejected, leaves the grant in force
    more = share.create_request(session, mzj, reg, ["cn_id", "gender", "address"], "低保核查（扩大）")
    share.decide(session, share.Caller("gaj"), more.id, False, "超出必要范围")
    assert share.access(session, mzj, reg).grant_id == req.id


def test_base_libraries_are_shared_through_their_sources(session):
    lib = load_base_libraries(REPO_ROOT / "registrations", list(REGS.values()))[0].reg
    with pytest.raises(share.Forbidden, match="base library"):
        share.access(session, share.Caller("mzj"), lib)
    with pytest.raises(share.NotFound):
        share.access(session, share.PUBLIC_CALLER, lib)
