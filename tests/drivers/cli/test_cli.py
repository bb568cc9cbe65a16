"""The `citylake` command helps: help text everywhere, registered names on a typo, errors for a
missing or empty registrations folder, `--json` on every listing, `--version`."""

from __future__ import annotations

import argparse
import json
from types import SimpleNamespace

import pytest

import citylake
from citylake.core.lake import Lake
from citylake.core.reasons import REASONS
from citylake.core.registry import directory_registrations, load_registrations
from citylake.core.zones import landing_dir
from citylake.drivers.cli import main
from citylake.drivers.cli.main import build_parser
from citylake.drivers.cli.run import describe
from tests.drivers.cli.helpers import run

GBK_CSV = "统一社会信用代码,企业名称,登记状态\n91110000802100433B,郑州某公司,存续\n".encode("gbk")



@pytest.fixture
def regs(settings):
    return load_registrations(settings.resources_dir)


# ---- 1. help text ------------------------------------------------------------------------------
def _undocumented(parser: argparse.ArgumentParser, path: str) -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = "/".join(action.option_strings) or action.dest
        if not action.help:
            missing.append(f"{path} {name}")
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for sub_name, sub in action.choices.items():
                if not helps.get(sub_name):
                    missing.append(f"{path} {sub_name} (command)")
                missing += _undocumented(sub, f"{path} {sub_name}")
    return missing


def test_every_option_and_positional_has_help():
    parser = build_parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert {"check", "run", "catalog", "registrations", "demo", "generate"} <= set(commands.choices)
    assert _undocumented(parser, "citylake") == []


def test_plugin_help_is_what_the_command_does(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert "`citylake demo`" not in out and "`citylake generate`" not in out
    assert "write sample departmental exports" in out


# ---- 2. unknown names list the registered ones -----------------------------------------------
def test_run_unknown_resource_lists_the_registered_ones(env, regs, capsys):
    code, out, err = run(capsys, "run", "--resource", "enterprise_registraton")
    assert code == 2 and out == ""
    names = ", ".join(sorted(r.resource for r in regs))
    assert err == f"citylake run: error: unknown resource: enterprise_registraton; registered resources: {names}\n"


def test_run_unknown_department_lists_the_registered_ones(env, regs, capsys):
    code, out, err = run(capsys, "run", "--department", "scjgg")
    assert code == 2 and out == ""
    names = ", ".join(sorted({r.department for r in regs}))
    assert err == f"citylake run: error: unknown department: scjgg; registered departments: {names}\n"


def test_generate_unknown_resources_use_the_same_wording(env, regs, capsys):
    code, out, err = run(capsys, "generate", "--resource", "typo", "--resource", "enterprise_registration",
                         "--resource", "other")
    assert code == 2 and out == ""
    names = ", ".join(sorted(r.resource for r in regs))
    assert err == f"citylake generate: error: unknown resources: typo, other; registered resources: {names}\n"
    assert not (env.home / "generated").exists()  # nothing written


# ---- 3. missing folders and empty registries -------------------------------------------------
def test_registrations_missing_folder(env, tmp_path, capsys):
    missing = tmp_path / "missing"
    code, out, err = run(capsys, "registrations", "--dir", str(missing))
    assert code == 2 and out == ""
    assert err.startswith(f"citylake registrations: error: registrations folder {missing} does not exist")


def test_registrations_empty_folder(env, tmp_path, capsys):
    empty = tmp_path / "empty"
    (empty / "scjg").mkdir(parents=True)  # a department folder, but no <resource>.yaml
    code, out, err = run(capsys, "registrations", "--dir", str(empty))
    assert code == 2 and out == ""
    assert err.startswith(f"citylake registrations: error: no registrations in {empty}")


def test_registrations_broken_file_is_an_error(env, tmp_path, capsys):
    (tmp_path / "bad" / "scjg").mkdir(parents=True)
    (tmp_path / "bad" / "scjg" / "x.yaml").write_text("resource: [", encoding="utf-8")
    code, out, err = run(capsys, "registrations", "--dir", str(tmp_path / "bad"))
    assert code == 2 and out == "" and "x.yaml" in err and "not valid YAML" in err


def test_run_with_a_missing_or_empty_resources_dir(env, tmp_path, monkeypatch, capsys):
    missing = tmp_path / "missing"
    monkeypatch.setenv("CITYLAKE_RESOURCES_DIR", str(missing))
    code, out, err = run(capsys, "run", "--resource", "enterprise_registration")
    assert code == 2 and out == ""
    assert err.startswith(f"citylake run: error: registrations folder {missing} does not exist")
    assert "CITYLAKE_RESOURCES_DIR" in err

    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("CITYLAKE_RESOURCES_DIR", str(empty))
    code, out, err = run(capsys, "run", "--department", "scjg")
    assert code == 2 and out == ""
    assert err.startswith(f"citylake run: error: no registrations in {empty}")


def test_catalog_publish_refuses_an_empty_resources_dir(env, tmp_path, monkeypatch, capsys):
    # Publishing no registrations would withdraw every resource from the directory.
    monkeypatch.setenv("CITYLAKE_RESOURCES_DIR", str(tmp_path))
    code, out, err = run(capsys, "catalog", "publish")
    assert code == 2 and out == ""
    assert err.startswith(f"citylake catalog publish: error: no registrations in {tmp_path}")


# ---- 4. --json on every listing; readable `run` by default ----------------------------------
def test_registrations_json(env, regs, capsys):
    code, out, err = run(capsys, "registrations", "--json")
    assert code == 0 and err == ""
    rows = json.loads(out)
    assert [r["resource"] for r in rows] == [r.resource for r in regs]
    [ent] = [r for r in rows if r["resource"] == "enterprise_registration"]
    reg = next(r for r in regs if r.resource == "enterprise_registration")
    assert ent == {
        "department": "scjg", "resource": "enterprise_registration", "name": reg.name,
        "source_kind": "file", "source_format": "csv", "update_cycle": reg.update_cycle,
        "field_count": len(reg.fields), "key": ["uscc"],
    }
    [sql] = [r for r in rows if r["source_kind"] == "sql"]
    assert sql["key"] == ["cn_id", "insurance_type"]


def test_registrations_text(env, regs, capsys):
    code, out, _ = run(capsys, "registrations")
    lines = out.splitlines()
    assert code == 0 and len(lines) == len(regs)
    assert any(line.startswith("scjg") and "enterprise_registration" in line and "key uscc" in line
               for line in lines)


def _drop_a_file(settings):
    reg = next(r for r in load_registrations(settings.resources_dir) if r.resource == "enterprise_registration")
    Lake.from_settings(settings).write_bytes(f"{landing_dir(reg.department, reg.resource)}/a.csv", GBK_CSV)


def test_run_prints_a_readable_line_per_step(env, capsys):
    _drop_a_file(env)
    code, out, err = run(capsys, "run", "--resource", "enterprise_registration", "--stage", "ingest")
    assert code == 0
    line, blank, *summary = out.splitlines()
    resource, step, seconds, unit, *what = line.split()
    assert (resource, step, unit) == ("enterprise_registration", "ingest", "s")
    assert float(seconds) >= 0
    assert " ".join(what) == "1 file(s): 1 ingested"
    # The summary ends the output; progress went to stderr (plain lines: not a terminal).
    assert blank == "" and summary[0].split() == ["resource", "step", "seconds", "rows", "rows/s"]
    assert summary[2].split()[:2] == ["enterprise_registration", "ingest"]
    assert summary[-1].startswith("1 resource(s), 1 step(s): ")
    assert err.splitlines()[0] == "enterprise_registration · ingest …"
    assert err.splitlines()[1].startswith("enterprise_registration · ingest done in ")
    # --quiet: no progress, the same results and summary.
    _drop_a_file(env)
    code, out, err = run(capsys, "run", "--resource", "enterprise_registration", "--stage", "ingest", "--quiet")
    assert code == 0 and err == "" and out.splitlines()[-1].startswith("1 resource(s), 1 step(s): ")
    # Again: the file is gone from landing.
    code, out, _ = run(capsys, "run", "--resource", "enterprise_registration", "--stage", "ingest")
    assert code == 0 and out.splitlines()[0].endswith("nothing to ingest")


def test_run_json_prints_the_full_results(env, capsys):
    _drop_a_file(env)
    code, out, _ = run(capsys, "run", "--resource", "enterprise_registration", "--stage", "ingest", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["resource"] == "enterprise_registration"
    assert [o["status"] for o in doc["ingest"]] == ["ingested"]


def test_run_says_when_a_step_does_not_apply(env, capsys):
    code, out, _ = run(capsys, "run", "--resource", "enterprise_registration", "--stage", "extract")
    assert code == 0
    assert out == "enterprise_registration  step 'extract' does not apply to a file source\n"  # no summary: no steps


def test_describe_each_step():
    conform = [SimpleNamespace(status="conformed", received=10, standardized=8, quarantined=2),
               SimpleNamespace(status="rejected", received=0, standardized=0, quarantined=0)]
    assert describe("conform", conform) == (
        "2 batch(es) (1 conformed, 1 rejected): 10 rows received, 8 standardized, 2 quarantined")
    assert describe("check", [{"success": True}, {"success": False}]) == "2 batch(es) checked: 1 passed, 1 blocked"
    merged = SimpleNamespace(status="merged", rows=1234, version="77", batches=["b1", "b2"], added_records=40)
    assert describe("curate", merged) == "merged 2 batch(es), 40 row(s) written: 1,234 curated rows, snapshot 77"
    assert describe("curate", SimpleNamespace(status="unchanged", rows=1234)) == "unchanged: 1,234 curated rows"
    assert describe("curate", SimpleNamespace(status="empty", rows=0, version=None)) == "nothing curated yet"
    assert describe("receipt", [{"status": "accepted"}, {"status": "accepted"}, {"status": "blocked"}]) == (
        "3 receipt(s) written: 2 accepted, 1 blocked")
    assert describe("detect", ["landing/a.csv"]) == "1 file(s) waiting in landing"
    assert describe("extract", SimpleNamespace(rows=0, batch_id=None)) == "no new rows"
    assert describe("extract", SimpleNamespace(rows=5, batch_id="ab12")) == "5 new row(s) into raw batch ab12"
    built = SimpleNamespace(status="built", rows=12, conflicts=3, sources={"a": 1, "b": 2})
    assert describe("base", built) == "built: 12 rows, 3 conflict(s), from a, b"
    assert describe("base", SimpleNamespace(status="empty")) == "no source curated yet"


def test_catalog_diff_json(env, settings, regs, capsys):
    assert run(capsys, "catalog", "publish")[0] == 0
    assert run(capsys, "catalog", "publish")[0] == 0
    code, out, _ = run(capsys, "catalog", "diff", "--json", "--from", "1", "--to", "2")
    assert code == 0 and out == ""  # nothing changed between the two
    code, out, _ = run(capsys, "catalog", "diff", "--json", "--to", "1")
    changes = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and {c["kind"] for c in changes} == {"added"}
    # every resource and every base library (registrations/base/) is a directory entry
    entries = directory_registrations(settings.resources_dir)
    assert sorted(c["resource"] for c in changes) == sorted(r.resource for r in entries)
    assert {r.resource for r in regs} < {r.resource for r in entries}
    assert set(changes[0]) == {"kind", "resource", "code", "name", "details"}


# ---- 5. --version ------------------------------------------------------------------------------
def test_version(capsys):
    code, out, err = run(capsys, "--version")
    assert code == 0 and err == ""
    assert out == f"citylake {citylake.__version__}\n"


# ---- 6. check --json carries the messages ------------------------------------------------------
def test_check_json_has_chinese_and_english_messages(capsys):
    code, out, _ = run(capsys, "check", "uscc", "--json", "91110000802100433B", "9111000080210043XB")
    assert code == 1
    valid, invalid = (json.loads(line) for line in out.splitlines())
    assert (valid["message_zh"], valid["message_en"]) == ("有效", "valid")
    assert invalid["reason"] == "uscc_check"
    assert (invalid["message_zh"], invalid["message_en"]) == REASONS["uscc_check"]


# ---- 7. a reversed range is refused ------------------------------------------------------------
def test_catalog_diff_reversed_range_is_refused(env, capsys):
    assert run(capsys, "catalog", "publish")[0] == 0
    assert run(capsys, "catalog", "publish")[0] == 0
    code, out, err = run(capsys, "catalog", "diff", "--from", "2", "--to", "1")
    assert code == 2 and out == ""
    assert err == "citylake catalog diff: error: --from 2 is after --to 1: give the older version as --from\n"
    code, out, _ = run(capsys, "catalog", "diff", "--from", "1", "--to", "2")
    assert code == 0 and out == "publication 1 to 2: 0 change(s)\n"


def test_catalog_diff_from_with_pending_is_refused(env, capsys):
    code, out, err = run(capsys, "catalog", "diff", "--pending", "--from", "1")
    assert code == 2 and out == "" and "--from does not apply with --pending" in err


def test_catalog_diff_unknown_version(env, capsys):
    assert run(capsys, "catalog", "publish")[0] == 0
    code, out, err = run(capsys, "catalog", "diff", "--from", "5", "--to", "7")
    assert code == 2 and out == "" and err == "citylake catalog diff: error: no publication version 5\n"


def test_run_names_the_variable_of_a_missing_sql_connection(env, monkeypatch, capsys):
    monkeypatch.delenv("AIRFLOW_CONN_RSJ_SOURCE_DB", raising=False)
    assert main(["run", "--department", "rsj"]) == 2
    err = capsys.readouterr().err
    assert "social_insurance_enrollment" in err and "AIRFLOW_CONN_RSJ_SOURCE_DB" in err
