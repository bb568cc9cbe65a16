"""Exports of one publication: the national exchange spreadsheet (XLSX), the same as CSV and JSON,
and the open part as DCAT-AP JSON-LD.

Every function takes the entry snapshots of one publication (see :mod:`citylake.stages.publish.entries`) and
returns bytes; :mod:`citylake.stages.publish.publish` writes them through the lake layer.

The spreadsheet's first sheet has one row per information item and exactly the template's columns
(``TEMPLATE_COLUMNS``). Elements the template has no column for (提供方, 提供方代码, 关联资源代码)
are on a second sheet, keyed by 信息资源代码. The template's 下设机构 column stays empty: the
registration schema does not record a sub-unit.

The open export (DCAT-AP, by the directory guideline's crosswalk) lists only resources that are open
(是否向社会开放 = 是, never 不予共享), describes only their ``public`` fields, and never names a
personal or restricted field: not in the table schema, and not in the description — the summary is
published with the titles of the resource's non-public fields taken out of its enumerations.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime

from citylake.stages.publish.entries import NOT_SHARED, is_open

TEMPLATE_COLUMNS = [
    "序号",
    "类",
    "项",
    "目",
    "细目",
    "关联业务事项",
    "信息资源名称",
    "信息资源代码",
    "下设机构",
    "信息资源摘要",
    "信息资源格式分类",
    "信息资源格式类型",
    "其他类型资源格式描述",
    "信息项名称",
    "数据类型",
    "数据长度",
    "共享类型",
    "共享条件/不予共享依据",
    "共享方式分类",
    "共享方式类型",
    "是否向社会开放",
    "开放条件",
    "更新周期",
    "发布日期",
]
SUPPLEMENT_COLUMNS = ["信息资源代码", "信息资源名称", "信息资源提供方", "信息资源提供方代码", "关联资源代码"]


def _label(code: str, name: str | None) -> str:
    return f"{code} {name}" if name else code


def template_rows(entries: list[dict]) -> list[list]:
    """One row per information item, in TEMPLATE_COLUMNS order (an entry without items gives one
    row with the item columns empty)."""
    rows: list[list] = []
    for e in sorted(entries, key=lambda e: e["code"]):
        c = e["classification"]
        head = [
            _label(c["category"], c["category_name"]),
            _label(c["item"], c["item_name"]),
            c["catalog"],
            c["detail"] or "",
            c["business"] or "",
            e["name"],
            e["code"],
            "",  # 下设机构: not in the registration schema
            e["summary"],
            e["format"]["category"],
            e["format"]["type"],
            e["format"]["description"] or "",
        ]
        tail = [
            e["share"]["type"],
            e["share"]["condition"] or "",
            e["share"]["method_category"] or "",
            e["share"]["method_type"] or "",
            "是" if is_open(e) else "否",
            e["open"]["condition"] or "",
            e["update_cycle"],
            e["publish_date"],
        ]
        items = e["items"] or [None]
        for item in items:
            if item is None:
                middle = ["", "", ""]
            else:
                middle = [
                    item["item_name"],
                    f"{item['data_type_name']}{item['data_type']}",
                    item["data_length"] if item["data_length"] is not None else "",
                ]
            rows.append([len(rows) + 1, *head, *middle, *tail])
    return rows


def supplement_rows(entries: list[dict]) -> list[list]:
    return [
        [e["code"], e["name"], e["provider"]["name"], e["provider"]["code"], "；".join(e["related_codes"])]
        for e in sorted(entries, key=lambda e: e["code"])
    ]


def xlsx_bytes(entries: list[dict], publication: dict) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    ws = wb.active
    ws.title = "政务信息资源目录"
    ws.append(TEMPLATE_COLUMNS)
    for row in template_rows(entries):
        ws.append(row)
    header_font = Font(bold=True)
    fill = PatternFill("solid", fgColor="DDE6F0")
    for cell in ws[1]:
        cell.font = header_font
        cell.fill = fill
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    widths = {
        "信息资源摘要": 40,
        "共享条件/不予共享依据": 36,
        "开放条件": 30,
        "信息资源名称": 24,
        "信息项名称": 18,
        "关联业务事项": 20,
        "信息资源代码": 16,
        "类": 16,
        "项": 18,
    }
    for i, name in enumerate(TEMPLATE_COLUMNS, start=1):
        ws.column_dimensions[get_column_letter(i)].width = widths.get(name, max(8, len(name) * 2 + 2))
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = ws.dimensions

    sup = wb.create_sheet("提供方及关联资源")
    sup.append(SUPPLEMENT_COLUMNS)
    for row in supplement_rows(entries):
        sup.append(row)
    for cell in sup[1]:
        cell.font = header_font
        cell.fill = fill
    for i, w in enumerate([16, 28, 28, 22, 30], start=1):
        sup.column_dimensions[get_column_letter(i)].width = w

    wb.properties.title = f"政务信息资源目录（第 {publication['version']} 版）"
    wb.properties.creator = "citylake"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def csv_bytes(entries: list[dict]) -> bytes:
    """The template rows as CSV, UTF-8 with a BOM so that Excel opens it correctly."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(TEMPLATE_COLUMNS)
    w.writerows(template_rows(entries))
    return buf.getvalue().encode("utf-8-sig")


def directory_json(entries: list[dict], publication: dict, facts: dict[str, dict]) -> dict:
    """Structured directory: every element of every entry plus its live facts."""
    out_entries = []
    for e in sorted(entries, key=lambda e: e["code"]):
        f = facts.get(e["resource"]) or {}
        entry = dict(e)
        if e["share"]["type"] == NOT_SHARED:
            entry["data_access"] = None
        entry["facts"] = {
            k: f.get(k)
            for k in (
                "has_data",
                "row_count",
                "last_updated_at",
                "last_received_at",
                "batches_received",
                "batches_rejected",
                "quality_latest_pass_rate",
                "quality_latest_success",
                "quality_recent_pass_rate",
                "quarantine_rate",
                "latest_quarantine_rate",
                "quarantine_reasons",
                "freshness",
                "freshness_label",
                "freshness_reference",
                "freshness_allowance_hours",
                "columns_present",
                "drift",
                "notes",
            )
        }
        out_entries.append(entry)
    return {
        "directory": "政务数据资源目录",
        "publication": publication,
        "columns": TEMPLATE_COLUMNS,
        "entries": out_entries,
    }


def json_bytes(entries: list[dict], publication: dict, facts: dict[str, dict]) -> bytes:
    return json.dumps(directory_json(entries, publication, facts), ensure_ascii=False, indent=2, default=str).encode(
        "utf-8"
    )


# ---- DCAT-AP ---------------------------------------------------------------------------------
EU = "http://publications.europa.eu/resource/authority/"
FREQUENCY = {
    "实时": "UPDATE_CONT",
    "每日": "DAILY",
    "每周": "WEEKLY",
    "每月": "MONTHLY",
    "每季度": "QUARTERLY",
    "每半年": "BIANNUAL",
    "每年": "ANNUAL",
    "其他": "IRREG",
}
FILE_TYPES = {
    "csv": "CSV",
    "json": "JSON",
    "jsonl": "JSON",
    "xlsx": "XLSX",
    "xls": "XLS",
    "xml": "XML",
    "txt": "TXT",
    "pdf": "PDF",
    "ofd": "OFD",
    "doc": "DOC",
    "docx": "DOCX",
    "html": "HTML",
    "et": "ET",
    "wps": "WPS",
}
XSD_TYPES = {
    "C": "string",
    "M": "string",
    "I": "integer",
    "N": "decimal",
    "B": "double",
    "F": "float",
    "Y": "decimal",
    "D": "date",
    "T": "dateTime",
    "L": "boolean",
    "G": "string",
}
CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "csvw": "http://www.w3.org/ns/csvw#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "owl": "http://www.w3.org/2002/07/owl#",
}
SEPARATORS = "、，,；;"


def open_fields(entry: dict) -> list[dict]:
    """The information items an open export may describe: public fields only."""
    return [i for i in entry["items"] if i["sensitivity"] == "public"]


def redact_titles(text: str, titles: list[str]) -> str:
    """Take field titles out of an enumeration in prose: '名称、法定代表人、注册资本' without
    法定代表人 gives '名称、注册资本'."""
    for t in sorted({t for t in titles if t}, key=len, reverse=True):
        text = re.sub(rf"(?:[{SEPARATORS}]|及|和|与)?{re.escape(t)}", "", text)
    text = re.sub(rf"([{SEPARATORS}])(?:[{SEPARATORS}])+", r"\1", text)
    text = re.sub(rf"(包括|包含|含)[{SEPARATORS}]", r"\1", text)
    return text


def _lit(value: str, lang: str = "zh") -> dict:
    return {"@value": value, "@language": lang}


# The downloads of the data service (``/api/v1/open/<resource>/download?format=…``): format -> media type.
SERVICE_DOWNLOADS = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
}


def open_dcat(entries: list[dict], publication: dict, base: str, page_url, service: str = "") -> dict:
    """DCAT-AP JSON-LD of the open entries. ``base`` ends with '/'; ``page_url(resource)`` gives the
    absolute URL of the resource's page (its landing page and dcat:accessURL).

    ``service``: the data service's public base URL (``CITYLAKE_SERVICE_URL``). With it, each open
    dataset has a distribution per download format (dcat:downloadURL
    ``{service}/api/v1/open/<resource>/download?format=csv|xlsx|json``) and a dcat:DataService
    (dcat:endpointURL ``{service}/api/v1/open/<resource>/rows``, dcat:endpointDescription
    ``{service}/openapi.json``). Without it, one distribution in the registered format whose
    accessURL is the page, and a DataService pointing at the page for a resource shared by 接口."""
    service = service.rstrip("/")
    opened = [e for e in sorted(entries, key=lambda e: e["code"]) if is_open(e)]
    scheme_id = f"{base}classification"
    graph: list[dict] = []
    concepts: dict[str, dict] = {}
    agents: dict[str, dict] = {}
    datasets = []
    from citylake.stages.publish.classification import levels

    for e in opened:
        c = e["classification"]
        parent = None
        theme = None
        for lv in levels(c["category"], c["item"], c["catalog"], c["detail"]):
            cid = f"{scheme_id}/{lv.key}"
            if cid not in concepts:
                concept = {
                    "@id": cid,
                    "@type": "skos:Concept",
                    "skos:notation": lv.key,
                    "skos:prefLabel": _lit(f"{lv.level} {lv.label}"),
                    "skos:inScheme": {"@id": scheme_id},
                }
                if parent:
                    concept["skos:broader"] = {"@id": parent}
                else:
                    concept["skos:topConceptOf"] = {"@id": scheme_id}
                concepts[cid] = concept
            parent = theme = cid
        agent_id = f"{base}agent/{e['provider']['code']}"
        agents.setdefault(
            agent_id,
            {
                "@id": agent_id,
                "@type": ["foaf:Agent", "foaf:Organization"],
                "foaf:name": _lit(e["provider"]["name"]),
                "dct:identifier": e["provider"]["code"],
            },
        )
        ds_id = f"{base}dataset/{e['code']}"
        fmt_type = (e["format"]["type"] or "").lower()
        fmt = (
            {"@id": f"{EU}file-type/{FILE_TYPES[fmt_type]}"}
            if fmt_type in FILE_TYPES
            else {"@type": "dct:MediaTypeOrExtent", "rdfs:label": e["format"]["type"]}
        )
        hidden = [i["item_name"] for i in e["items"] if i["sensitivity"] != "public"]
        description = redact_titles(e["summary"], hidden)
        # the public sees the open condition only; share conditions are between departments
        rights = "向社会开放。开放条件：" + (e["open"]["condition"] or "无条件开放")
        schema = {
            "@id": f"{ds_id}#schema",
            "@type": ["dct:Standard", "csvw:Schema"],
            "dct:title": _lit(f"{e['name']} 信息项（开放部分）"),
            "csvw:column": {
                "@list": [
                    {
                        "@type": "csvw:Column",
                        "csvw:name": i["field"],
                        "csvw:title": _lit(i["item_name"]),
                        "csvw:datatype": {"@id": f"http://www.w3.org/2001/XMLSchema#{XSD_TYPES[i['data_type']]}"},
                        "dct:description": _lit(
                            f"{i['data_type_name']}{i['data_type']}"
                            + (f"，长度 {i['data_length']}" if i["data_length"] is not None else "")
                            + (f"，单位 {i['unit']}" if i["unit"] else "")
                        ),
                    }
                    for i in open_fields(e)
                ]
            },
        }
        access = page_url(e["resource"])
        rights_node = {"@type": "dct:RightsStatement", "rdfs:label": _lit(rights)}
        if service:
            api = f"{service}/api/v1/open/{e['resource']}"
            distributions = [{
                "@id": f"{ds_id}#distribution-{kind}",
                "@type": "dcat:Distribution",
                "dct:title": _lit(f"{e['name']}（{kind.upper()} 下载，开放部分）"),
                "dcat:accessURL": {"@id": access},
                "dcat:downloadURL": {"@id": f"{api}/download?format={kind}"},
                "dct:format": {"@id": f"{EU}file-type/{FILE_TYPES[kind]}"},
                "dcat:mediaType": {"@id": f"https://www.iana.org/assignments/media-types/{media}"},
                "dct:rights": rights_node,
                "dct:conformsTo": {"@id": schema["@id"]},
            } for kind, media in SERVICE_DOWNLOADS.items()]
        else:
            distributions = [{
                "@id": f"{ds_id}#distribution",
                "@type": "dcat:Distribution",
                "dct:title": _lit(f"{e['name']}（{e['format']['category']}，{e['format']['type']}）"),
                "dcat:accessURL": {"@id": access},
                "dct:format": fmt,
                "dct:rights": rights_node,
                "dct:conformsTo": {"@id": schema["@id"]},
            }]
        dataset = {
            "@id": ds_id,
            "@type": "dcat:Dataset",
            "dct:title": _lit(e["name"]),
            "dct:description": _lit(description),
            "dct:identifier": e["code"],
            "dct:publisher": {"@id": agent_id},
            "dcat:theme": {"@id": theme},
            "dct:accessRights": {"@id": f"{EU}access-right/PUBLIC"},
            "dct:accrualPeriodicity": {"@id": f"{EU}frequency/{FREQUENCY[e['update_cycle']]}"},
            "dct:issued": {"@value": e["publish_date"], "@type": "xsd:date"},
            "dct:language": {"@id": f"{EU}language/ZHO"},
            "dct:conformsTo": {"@id": schema["@id"]},
            "dcat:distribution": [{"@id": d["@id"]} for d in distributions],
            "dcat:landingPage": {"@id": access},
        }
        if e["related_codes"]:
            dataset["dct:relation"] = [{"@id": f"{base}dataset/{code}"} for code in e["related_codes"]]
        nodes = [dataset, *distributions, schema]
        if service or e["share"]["method_type"] == "接口":
            svc_id = f"{ds_id}#service"
            for d in distributions:
                d["dcat:accessService"] = {"@id": svc_id}
            data_service = {
                "@id": svc_id,
                "@type": "dcat:DataService",
                "dct:title": _lit(f"{e['name']} 数据接口"),
                "dcat:endpointURL": {"@id": f"{service}/api/v1/open/{e['resource']}/rows" if service else access},
                "dcat:servesDataset": {"@id": ds_id},
            }
            if service:
                data_service["dcat:endpointDescription"] = {"@id": f"{service}/openapi.json"}
            nodes.append(data_service)
        datasets.append(ds_id)
        graph.extend(nodes)

    published = publication["published_at"]
    if isinstance(published, datetime):
        published = published.isoformat()
    catalog = {
        "@id": f"{base}catalog",
        "@type": "dcat:Catalog",
        "dct:title": _lit("政务数据资源开放目录"),
        "dct:description": _lit("向社会开放的政务数据资源（第 {} 版）".format(publication["version"])),
        "dct:issued": {"@value": published, "@type": "xsd:dateTime"},
        "owl:versionInfo": str(publication["version"]),
        "dct:publisher": {"@id": f"{base}agent/centre"},
        "dcat:themeTaxonomy": {"@id": scheme_id},
        "dcat:dataset": [{"@id": d} for d in datasets],
    }
    scheme = {
        "@id": scheme_id,
        "@type": "skos:ConceptScheme",
        "dct:title": _lit("政务信息资源分类（类/项/目/细目）"),
        "skos:hasTopConcept": [{"@id": cid} for cid, c in concepts.items() if "skos:topConceptOf" in c],
    }
    centre = {
        "@id": f"{base}agent/centre",
        "@type": ["foaf:Agent", "foaf:Organization"],
        "foaf:name": _lit("城市大数据资源中心"),
    }
    return {"@context": CONTEXT, "@graph": [catalog, centre, scheme, *concepts.values(), *agents.values(), *graph]}


def dcat_bytes(entries: list[dict], publication: dict, base: str, page_url, service: str = "") -> bytes:
    return json.dumps(open_dcat(entries, publication, base, page_url, service), ensure_ascii=False,
                      indent=2).encode("utf-8")
