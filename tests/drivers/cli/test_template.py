"""`citylake template RESOURCE [--out FOLDER]`: writes the drop template (XLSX and CSV); an unknown
resource lists the registered ones, a SQL resource is refused; both exit 2."""

from __future__ import annotations

import io

import openpyxl
import pytest

from citylake.core.registry import load_registrations
from citylake.stages import drop_template
from tests.drivers.cli.helpers import run

RES = "enterprise_registration"



@pytest.fixture
def regs(settings):
    return {r.resource: r for r in load_registrations(settings.resources_dir)}


def test_writes_both_files_to_out(env, regs, tmp_path, capsys):
    out_dir = tmp_path / "new" / "folder"
    code, out, err = run(capsys, "template", RES, "--out", str(out_dir))
    assert code == 0 and err == ""
    xlsx, csv = out_dir / f"{RES}_template.xlsx", out_dir / f"{RES}_template.csv"
    assert out.splitlines() == [str(xlsx), str(csv)]
    reg = regs[RES]
    assert csv.read_bytes() == drop_template.csv_bytes(reg)
    assert csv.read_bytes().decode("gbk").splitlines()[0] == ",".join(f.title for f in reg.fields)
    wb = openpyxl.load_workbook(io.BytesIO(xlsx.read_bytes()))
    assert [c.value for c in wb.worksheets[0][1]] == [f.title for f in reg.fields]
    assert wb.sheetnames[1] == drop_template.HELP_SHEET


def test_default_out_is_the_current_folder(env, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "template", RES)
    assert code == 0 and out.splitlines() == [f"{RES}_template.xlsx", f"{RES}_template.csv"]
    assert (tmp_path / f"{RES}_template.xlsx").exists() and (tmp_path / f"{RES}_template.csv").exists()


def test_unknown_resource_lists_the_registered_ones(env, regs, tmp_path, capsys):
    code, out, err = run(capsys, "template", "enterprise_registraton", "--out", str(tmp_path / "t"))
    assert code == 2 and out == ""
    names = ", ".join(sorted(regs))
    assert err == f"citylake template: error: unknown resource: enterprise_registraton; registered resources: {names}\n"
    assert not (tmp_path / "t").exists()


def test_a_sql_resource_is_refused(env, regs, tmp_path, capsys):
    sql = sorted(r for r, reg in regs.items() if reg.source.kind == "sql")
    assert sql
    code, out, err = run(capsys, "template", sql[0], "--out", str(tmp_path / "t"))
    assert code == 2 and out == ""
    assert err.startswith(f"citylake template: error: {sql[0]} is extracted from a database (sql source")
    assert "no drop template" in err
    assert not (tmp_path / "t").exists()


def test_an_out_path_that_is_a_file_is_a_usage_error(env, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, out, err = run(capsys, "template", RES, "--out", str(blocker))
    assert code == 2 and out == "" and err.startswith(f"citylake template: error: cannot write to {blocker}")


def test_help_names_the_options(capsys):
    code, out, _ = run(capsys, "template", "--help")
    assert code == 0 and "--out FOLDER" in out and "current folder" in out
