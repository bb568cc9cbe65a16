"""Registrations: the shipped ones load; broken ones fail naming the file and the field."""

from pathlib import Path

import pytest
import yaml

from citylake.core.registry import RegistrationError, load_registration, load_registrations
from citylake.core.settings import REPO_ROOT

RESOURCES = REPO_ROOT / "registrations"
ENTERPRISE = RESOURCES / "scjg" / "enterprise_registration.yaml"


def test_shipped_registrations_cover_five_resources_from_four_departments():
    regs = load_registrations(RESOURCES)
    file_regs = [r for r in regs if r.source.kind == "file"]
    assert len(file_regs) >= 5
    assert len({r.department for r in regs}) >= 4
    formats = {(r.source.format, r.source.encoding if r.source.format == "csv" else None) for r in file_regs}
    assert ("csv", "gbk") in formats
    assert any(f == "xlsx" for f, _ in formats)
    assert any(f == "json" for f, _ in formats)


def test_header_aliases_map_to_fields():
    reg = load_registration(ENTERPRISE)
    hm = reg.header_map()
    assert hm["统一社会信用代码"] == "uscc"
    assert hm["注册资本(万元)"] == "registered_capital"
    # full-width brackets and spaces in real headers
    from citylake.core.registry import normalize_header

    assert hm[normalize_header(" 注册资本（万元） ")] == "registered_capital"


def _broken(tmp_path: Path, mutate) -> Path:
    raw = yaml.safe_load(ENTERPRISE.read_text(encoding="utf-8"))
    mutate(raw)
    dept = tmp_path / "scjg"
    dept.mkdir(exist_ok=True)
    path = dept / "enterprise_registration.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "mutate, where, words",
    [
        (lambda r: r["fields"][0].__setitem__("check", "luhn"), "fields[0] (uscc).check", "uscc"),
        (lambda r: r["fields"][4].__setitem__("type", "currency"), "fields[4] (registered_capital).type", "money"),
        (lambda r: r["fields"].append(dict(r["fields"][1])), "fields", "duplicate field name(s): enterprise_name"),
        (lambda r: r.__setitem__("key", []), "key", "missing key"),
        (lambda r: r.__setitem__("key", ["nope"]), "key", "key field 'nope'"),
        (lambda r: r["fields"][2].pop("mask"), "fields[2] (legal_rep)", "needs a 'mask'"),
        (lambda r: r["share"].pop("condition"), "share", "must state its condition"),
        (lambda r: r.__setitem__("update_cycle", "每两天"), "update_cycle", "每日"),
    ],
)
def test_broken_registration_names_file_and_field(tmp_path, mutate, where, words):
    path = _broken(tmp_path, mutate)
    with pytest.raises(RegistrationError) as info:
        load_registration(path)
    message = str(info.value)
    assert str(path) in message
    assert where in message
    assert words in message


def test_folder_must_match_department(tmp_path):
    path = _broken(tmp_path, lambda r: r.__setitem__("department", "gaj"))
    with pytest.raises(RegistrationError, match="does not match its folder"):
        load_registration(path)


def test_same_resource_in_two_departments_is_refused(tmp_path):
    _broken(tmp_path, lambda r: None)
    other = tmp_path / "gaj"
    other.mkdir()
    raw = yaml.safe_load(ENTERPRISE.read_text(encoding="utf-8"))
    raw["department"] = "gaj"
    (other / "enterprise_registration.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(RegistrationError, match="also registered by department"):
        load_registrations(tmp_path)


def test_invalid_yaml_is_reported(tmp_path):
    dept = tmp_path / "scjg"
    dept.mkdir()
    path = dept / "x.yaml"
    path.write_text("resource: [unclosed", encoding="utf-8")
    with pytest.raises(RegistrationError, match="not valid YAML"):
        load_registration(path)


# ---- what a drop holds and when it was exported -------------------------------------------------
def test_drops_are_increments_without_an_export_time_unless_registered():
    for reg in load_registrations(RESOURCES):
        assert reg.snapshot in ("increment", "full")
    reg = load_registration(ENTERPRISE)
    assert reg.snapshot == "increment" and reg.export_time is None


def test_a_full_snapshot_with_its_export_date_in_the_file_name_loads(tmp_path):
    path = _broken(tmp_path, lambda r: r.update(snapshot="full", export_time={"from_name": r"_(?P<date>\d{8})\.csv$"}))
    reg = load_registration(path)
    assert reg.snapshot == "full"
    assert reg.export_time.stated_in("企业登记_20261121.csv").isoformat() == "2026-11-21T00:00:00"
    assert reg.export_time.stated_in("企业登记.csv") is None


@pytest.mark.parametrize(
    "pattern, name, stated",
    [
        (r"(?P<date>\d{8})", "scjg/qy_20261121.csv", (2026, 11, 21)),
        (r"_(?P<date>\d{10,14})", "qy_2026112109.csv", (2026, 11, 21, 9)),
        (r"_(?P<date>\d{10,14})", "qy_202611210930.csv", (2026, 11, 21, 9, 30)),
        (r"_(?P<date>\d{10,14})", "qy_20261121093015.csv", (2026, 11, 21, 9, 30, 15)),
        (r"(?P<date>\d{4}-\d\d-\d\d[ T]\d\d:\d\d)", "2026-11-21T09:30 导出.csv", (2026, 11, 21, 9, 30)),
        (r"(?P<date>\d{4}-\d\d-\d\d)", "2026-11-21/qy.csv", (2026, 11, 21)),
        (r"_(?P<date>\d{8})", "qy_20261331.csv", None),  # not a calendar date
        (r"_(?P<date>\d+)", "qy_202611.csv", None),  # a month is not an export date
        (r"_(?P<date>\d{8})|(?P<other>x)", "x.csv", None),  # the group did not take part
    ],
)
def test_the_export_date_a_file_name_states(pattern, name, stated):
    from datetime import datetime

    from citylake.core.registry import ExportTime

    assert ExportTime(from_name=pattern).stated_in(name) == (datetime(*stated) if stated else None)


def _with_export_field(sensitivity: str):
    def mutate(r):
        r["fields"].append({"name": "exported_on", "title": "导出日期", "type": "date", "sensitivity": sensitivity,
                            **({"mask": "full"} if sensitivity == "personal" else {})})
        r["export_time"] = {"field": "exported_on"}
    return mutate


def test_an_export_time_field_loads(tmp_path):
    reg = load_registration(_broken(tmp_path, _with_export_field("public")))
    assert reg.export_time.field == "exported_on" and reg.snapshot == "increment"


@pytest.mark.parametrize(
    "mutate, where, words",
    [
        (lambda r: r.__setitem__("snapshot", "weekly"), "snapshot", "'increment' or 'full'"),
        (lambda r: r.__setitem__("export_time", {}), "export_time", "exactly one of 'field' or 'from_name'"),
        (lambda r: r.__setitem__("export_time", {"field": "established_on", "from_name": r"(?P<date>\d{8})"}),
         "export_time", "exactly one of"),
        (lambda r: r.__setitem__("export_time", {"from_name": r"_(\d{8})"}), "export_time", "no group named 'date'"),
        (lambda r: r.__setitem__("export_time", {"from_name": "(?P<date>[0-9"}), "export_time",
         "is not a regular expression"),
        (lambda r: r.__setitem__("export_time", {"at": "x"}), "export_time.at", "Extra inputs"),
        (lambda r: r.__setitem__("export_time", {"field": "nope"}), "export_time.field", "'nope' is not among the fields"),
        (lambda r: r.__setitem__("export_time", {"field": "enterprise_name"}), "export_time.field",
         "must be a date or timestamp"),
        (_with_export_field("personal"), "export_time.field", "personal or restricted"),
    ],
)
def test_broken_snapshot_or_export_time_names_the_field(tmp_path, mutate, where, words):
    path = _broken(tmp_path, mutate)
    with pytest.raises(RegistrationError) as info:
        load_registration(path)
    assert where in str(info.value) and words in str(info.value), str(info.value)


def test_a_birth_date_beside_a_masked_citizen_id_must_be_masked_too(tmp_path):
    """A masked ID keeps its first 6 and last 4 digits; the 8 it hides are the birth date."""
    src = REPO_ROOT / "registrations" / "gaj" / "resident_population.yaml"
    doc = yaml.safe_load(src.read_text(encoding="utf-8"))
    [birth] = [f for f in doc["fields"] if f["name"] == "birth_date"]
    assert (birth["sensitivity"], birth["mask"]) == ("personal", "year"), "the shipped registration masks it"
    birth.update(sensitivity="internal")
    birth.pop("mask")
    (tmp_path / "gaj").mkdir()
    (tmp_path / "gaj" / "resident_population.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True),
                                                                encoding="utf-8")
    with pytest.raises(RegistrationError, match=r"出生日期 shown in full gives back the masked digits of cn_id.*"
                                                 r"mask: year"):
        load_registrations(tmp_path)
