"""Exports of a publication: the national spreadsheet (XLSX), CSV, JSON and the open DCAT-AP."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import openpyxl
import pytest
import rdflib
import yaml
from catalog_fixtures import NOW, copy_resources
from rdflib import namespace as ns

from citylake.core.registry import directory_registrations
from citylake.stages.publish.exports import redact_titles
from citylake.stages.publish.publish import publish

# The national exchange template's columns, in order (the directory guideline's exchange template), written out here on
# purpose rather than imported, so the test checks the module against the standard.
TEMPLATE = [
    "序号", "类", "项", "目", "细目", "关联业务事项", "信息资源名称", "信息资源代码", "下设机构",
    "信息资源摘要", "信息资源格式分类", "信息资源格式类型", "其他类型资源格式描述", "信息项名称",
    "数据类型", "数据长度", "共享类型", "共享条件/不予共享依据", "共享方式分类", "共享方式类型",
    "是否向社会开放", "开放条件", "更新周期", "发布日期",
]
CSVW = rdflib.Namespace("http://www.w3.org/ns/csvw#")
NOT_SHARED_BASIS = "依据《中华人民共和国国家安全法》第二十五条，涉及国家安全，不予共享。"


@pytest.fixture
def published(settings, small_lake):
    result = publish(settings, now=NOW)
    return settings, result


def _xlsx_rows(path):
    wb = openpyxl.load_workbook(path, read_only=True)
    ws = wb.worksheets[0]
    return [list(r) for r in ws.iter_rows(values_only=True)], wb


def test_xlsx_header_is_the_template_in_order(published):
    settings, result = published
    rows, wb = _xlsx_rows(result.outputs["xlsx"])
    assert rows[0] == TEMPLATE
    regs = directory_registrations(settings.resources_dir)
    body = rows[1:]
    assert len(body) == sum(len(r.fields) for r in regs)  # one row per information item
    assert [r[0] for r in body] == list(range(1, len(body) + 1))
    col = {name: i for i, name in enumerate(TEMPLATE)}
    by_code = {}
    for r in body:
        by_code.setdefault(r[col["信息资源代码"]], []).append(r)
    for reg in regs:
        code = result.codes[reg.resource]
        mine = by_code[code]
        assert [r[col["信息项名称"]] for r in mine] == [f.title for f in reg.fields]
        first = mine[0]
        assert first[col["类"]].startswith(reg.classification.category)
        assert first[col["项"]].startswith(reg.classification.item)
        assert first[col["目"]] == reg.classification.catalog
        assert first[col["信息资源名称"]] == reg.name
        assert first[col["关联业务事项"]] == reg.classification.business
        assert first[col["信息资源摘要"]] == reg.summary
        assert first[col["信息资源格式分类"]] == reg.format.category
        assert first[col["共享类型"]] == reg.share.type
        assert first[col["是否向社会开放"]] == ("是" if reg.open.is_open else "否")
        assert first[col["更新周期"]] == reg.update_cycle
        assert first[col["发布日期"]] == NOW.date().isoformat()
        for r, f in zip(mine, reg.fields):
            assert r[col["数据类型"]].endswith(f.guideline_type[0]) and r[col["数据类型"]].startswith(
                f.guideline_type[1]
            )
            assert r[col["数据长度"]] == f.length
    # elements without a template column are on the second sheet
    sup = [list(r) for r in wb.worksheets[1].iter_rows(values_only=True)]
    assert sup[0][:4] == ["信息资源代码", "信息资源名称", "信息资源提供方", "信息资源提供方代码"]
    assert {r[0]: r[3] for r in sup[1:]} == {result.codes[r.resource]: r.provider.code for r in regs}


def test_csv_and_json_say_the_same(published):
    _settings, result = published
    xrows, _ = _xlsx_rows(result.outputs["xlsx"])
    with open(result.outputs["csv"], encoding="utf-8-sig", newline="") as fh:
        crows = list(csv.reader(fh))
    assert crows[0] == TEMPLATE
    assert [[("" if v is None else str(v)) for v in r] for r in xrows[1:]] == crows[1:]
    doc = json.loads(Path(result.outputs["json"]).read_text(encoding="utf-8"))
    assert doc["publication"]["version"] == result.version
    assert doc["columns"] == TEMPLATE
    entries = {e["resource"]: e for e in doc["entries"]}
    assert set(entries) == set(result.codes)
    ent = entries["enterprise_registration"]
    assert ent["code"] == result.codes["enterprise_registration"]
    assert ent["facts"]["row_count"] == 4 and ent["facts"]["quality_latest_pass_rate"] == 0.5
    assert ent["facts"]["freshness"] == "on_time" and ent["facts"]["last_updated_at"].startswith("2025-06-28")
    assert entries["resident_population"]["facts"]["has_data"] is False
    assert sum(len(e["items"]) for e in doc["entries"]) == len(crows) - 1


def _personal(regs):
    return [(r, f) for r in regs for f in r.fields if f.sensitivity in ("personal", "restricted")]


def test_dcat_parses_and_follows_the_crosswalk(published):
    settings, result = published
    g = rdflib.Graph()
    g.parse(result.outputs["dcat"], format="json-ld")
    regs = directory_registrations(settings.resources_dir)
    open_regs = [r for r in regs if r.open.is_open and r.share.type != "不予共享"]
    assert open_regs, "the registrations have open resources"
    datasets = set(g.subjects(ns.RDF.type, ns.DCAT.Dataset))
    ids = {str(g.value(d, ns.DCTERMS.identifier)) for d in datasets}
    assert ids == {result.codes[r.resource] for r in open_regs}
    catalog = next(g.subjects(ns.RDF.type, ns.DCAT.Catalog))
    assert set(g.objects(catalog, ns.DCAT.dataset)) == datasets
    for d in datasets:
        code = str(g.value(d, ns.DCTERMS.identifier))
        reg = next(r for r in open_regs if result.codes[r.resource] == code)
        assert str(g.value(d, ns.DCTERMS.title)) == reg.name
        assert g.value(d, ns.DCTERMS.description)
        publisher = g.value(d, ns.DCTERMS.publisher)
        assert str(g.value(publisher, ns.DCTERMS.identifier)) == reg.provider.code
        assert str(g.value(publisher, ns.FOAF.name)) == reg.provider.name
        theme = g.value(d, ns.DCAT.theme)
        assert (theme, ns.RDF.type, ns.SKOS.Concept) in g
        assert str(g.value(theme, ns.SKOS.notation)) == reg.classification.prefix
        scheme = g.value(theme, ns.SKOS.inScheme)
        assert (scheme, ns.RDF.type, ns.SKOS.ConceptScheme) in g
        chain = [theme]  # 目 -> 项 -> 类
        while g.value(chain[-1], ns.SKOS.broader) is not None:
            chain.append(g.value(chain[-1], ns.SKOS.broader))
        assert [str(g.value(c, ns.SKOS.notation)) for c in chain][-1] == reg.classification.category
        assert g.value(d, ns.DCTERMS.accessRights) is not None
        assert g.value(d, ns.DCTERMS.accrualPeriodicity) is not None
        assert str(g.value(d, ns.DCTERMS.issued)) == NOW.date().isoformat()
        schema = g.value(d, ns.DCTERMS.conformsTo)
        columns = list(rdflib.collection.Collection(g, g.value(schema, CSVW.column)))
        assert [str(g.value(c, CSVW.name)) for c in columns] == [
            f.name for f in reg.fields if f.sensitivity == "public"
        ]
        dists = list(g.objects(d, ns.DCAT.distribution))
        assert dists and all(g.value(x, ns.DCAT.accessURL) is not None for x in dists)
        assert all(g.value(x, ns.DCTERMS["format"]) is not None for x in dists)
        if reg.share.method_type == "接口":
            svc = g.value(dists[0], ns.DCAT.accessService)
            assert (svc, ns.RDF.type, ns.DCAT.DataService) in g


def test_dcat_without_a_service_url_points_at_the_pages(published):
    settings, result = published
    assert settings.service_url == ""
    g = rdflib.Graph().parse(result.outputs["dcat"], format="json-ld")
    pages = f"{settings.directory_link('')}site/open/r/"
    for dist in g.subjects(ns.RDF.type, ns.DCAT.Distribution):
        assert str(g.value(dist, ns.DCAT.accessURL)).startswith(pages)
        assert g.value(dist, ns.DCAT.downloadURL) is None
    for svc in g.subjects(ns.RDF.type, ns.DCAT.DataService):
        assert str(g.value(svc, ns.DCAT.endpointURL)).startswith(pages)


def test_dcat_with_a_service_url_points_at_the_data_services_endpoints(settings, small_lake):
    """CITYLAKE_SERVICE_URL: a distribution per download format of `citylake serve` and a data service
    on its rows endpoint, described by its OpenAPI document."""
    service = "https://data.example.gov.cn/service"
    s = replace(settings, service_url=service + "/")  # a trailing slash is not doubled
    result = publish(s, now=NOW)
    g = rdflib.Graph().parse(result.outputs["dcat"], format="json-ld")
    regs = directory_registrations(s.resources_dir)
    open_regs = [r for r in regs if r.open.is_open and r.share.type != "不予共享"]
    by_code = {result.codes[r.resource]: r for r in open_regs}
    datasets = set(g.subjects(ns.RDF.type, ns.DCAT.Dataset))
    assert {str(g.value(d, ns.DCTERMS.identifier)) for d in datasets} == set(by_code)
    for d in datasets:
        reg = by_code[str(g.value(d, ns.DCTERMS.identifier))]
        api = f"{service}/api/v1/open/{reg.resource}"
        dists = list(g.objects(d, ns.DCAT.distribution))
        assert {str(g.value(x, ns.DCAT.downloadURL)) for x in dists} == {
            f"{api}/download?format={fmt}" for fmt in ("csv", "xlsx", "json")}
        assert {str(g.value(x, ns.DCTERMS["format"])).rsplit("/", 1)[1] for x in dists} == {"CSV", "XLSX", "JSON"}
        assert all(str(g.value(x, ns.DCAT.accessURL)).endswith(f"/site/open/r/{reg.resource}.html") for x in dists)
        services = {g.value(x, ns.DCAT.accessService) for x in dists}
        assert len(services) == 1
        (svc,) = services
        assert (svc, ns.RDF.type, ns.DCAT.DataService) in g
        assert str(g.value(svc, ns.DCAT.endpointURL)) == f"{api}/rows"
        assert str(g.value(svc, ns.DCAT.endpointDescription)) == f"{service}/openapi.json"
        assert g.value(svc, ns.DCAT.servesDataset) == d
    # the paths are the data service's own routes
    from citylake.drivers.service.app import API, create_app

    routes = {r.path for r in create_app(replace(s, directory_url=f"sqlite:///{s.home / 'svc.db'}")).routes}
    assert {f"{API}/open/{{resource}}/download", f"{API}/open/{{resource}}/rows", "/openapi.json"} <= routes


def test_dcat_contains_no_personal_field_names(published):
    settings, result = published
    text = Path(result.outputs["dcat"]).read_text(encoding="utf-8")
    g = rdflib.Graph().parse(data=text, format="json-ld")
    regs = directory_registrations(settings.resources_dir)
    personal = _personal(regs)
    assert personal
    public_names = {f.name for r in regs if r.open.is_open for f in r.fields if f.sensitivity == "public"}
    column_names = {str(o) for o in g.objects(None, CSVW.name)}
    column_titles = {str(o) for o in g.objects(None, CSVW.title)}
    literals = {str(o) for o in g.objects() if isinstance(o, rdflib.Literal)}
    for reg, f in personal:
        # 信息项名称 (the title) never appears, anywhere in the document
        assert f.title not in text, f"{reg.resource}.{f.name}: {f.title}"
        assert f.title not in column_titles
        for alias in f.aliases:
            assert alias not in column_titles
        # the canonical name never appears as a column or a value; the only allowed occurrence is a
        # *public* column of an open resource that happens to share the name (e.g. a company's
        # registered address `address` vs a person's `address`).
        if f.name not in public_names:
            assert f.name not in column_names and f.name not in literals
            assert f'"{f.name}"' not in text
    # and per open resource: none of its own personal fields is described
    for reg in regs:
        if not reg.open.is_open:
            continue
        own = {f.name for f in reg.fields if f.sensitivity in ("personal", "restricted")}
        ds = next(g.subjects(ns.DCTERMS.identifier, rdflib.Literal(result.codes[reg.resource])))
        schema = g.value(ds, ns.DCTERMS.conformsTo)
        cols = {str(g.value(c, CSVW.name)) for c in rdflib.collection.Collection(g, g.value(schema, CSVW.column))}
        assert not (cols & own)


def test_redact_titles_from_summary():
    text = "包括统一社会信用代码、名称、法定代表人、注册资本、成立日期、住所及登记状态。"
    assert (
        redact_titles(text, ["法定代表人", "法定代表人身份证号码"])
        == "包括统一社会信用代码、名称、注册资本、成立日期、住所及登记状态。"
    )
    assert redact_titles("包括姓名、性别和住址。", ["姓名", "住址"]) == "包括性别。"


def test_not_shared_resource_appears_internally_with_its_legal_basis_only(settings, tmp_path):
    resources = copy_resources(tmp_path)
    raw = yaml.safe_load((resources / "gaj" / "resident_population.yaml").read_text(encoding="utf-8"))
    raw.update(
        resource="criminal_records",
        name="违法犯罪人员信息",
        summary="违法犯罪人员的基本信息。",
        share={"type": "不予共享", "condition": NOT_SHARED_BASIS},
        open={"is_open": True, "condition": "误标为开放"},
    )
    (resources / "gaj" / "criminal_records.yaml").write_text(
        yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    s = replace(settings, resources_dir=resources)
    result = publish(s, now=NOW)
    code = result.codes["criminal_records"]
    assert any("criminal_records" in w and "不予共享" in w for w in result.warnings)
    # internal spreadsheet: present, with the legal basis and no share method
    rows, _ = _xlsx_rows(result.outputs["xlsx"])
    col = {name: i for i, name in enumerate(TEMPLATE)}
    mine = [r for r in rows[1:] if r[col["信息资源代码"]] == code]
    assert mine and all(r[col["共享类型"]] == "不予共享" for r in mine)
    assert all(r[col["共享条件/不予共享依据"]] == NOT_SHARED_BASIS for r in mine)
    assert all(r[col["共享方式分类"]] in (None, "") and r[col["共享方式类型"]] in (None, "") for r in mine)
    assert all(r[col["是否向社会开放"]] == "否" for r in mine)
    doc = json.loads(Path(result.outputs["json"]).read_text(encoding="utf-8"))
    entry = next(e for e in doc["entries"] if e["code"] == code)
    assert entry["share"]["condition"] == NOT_SHARED_BASIS and entry["data_access"] is None
    # never in the open export, never with data on its page
    text = Path(result.outputs["dcat"]).read_text(encoding="utf-8")
    assert code not in text and "违法犯罪人员信息" not in text
    page = (s.directory_dir / "site" / "r" / "criminal_records.html").read_text(encoding="utf-8")
    assert NOT_SHARED_BASIS in page and "不提供数据访问" in page
    assert "<tbody><tr><td>" not in page.split("样例数据")[1]
