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
