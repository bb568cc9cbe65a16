"""A directory entry as a plain dict of guideline elements, built from a registration.

The dict (the *snapshot*) is what a publication stores for each entry and what every export is
made from, so the database, the spreadsheet, the JSON/CSV, the DCAT and the pages all say the same.
Elements (政务信息资源目录编制指南, the directory metadata):

=====  ==========================  ==============================================
 #      element                     snapshot key
=====  ==========================  ==============================================
 1      信息资源分类                classification.{category,item,catalog,detail}
 2      信息资源名称                name
 3      信息资源代码                code
 4      信息资源提供方              provider.name
 5      信息资源提供方代码          provider.code
 6      信息资源摘要                summary
 7      信息资源格式                format.{category,type,description}
 8      信息项信息                  items[].{item_name,data_type,data_length}
 9      共享属性                    share.{type,condition,method_category,method_type}
 10     开放属性                    open.{is_open,condition}
 11     更新周期                    update_cycle
 12     发布日期                    publish_date
 13     关联资源代码                related_codes (optional)
=====  ==========================  ==============================================

不予共享 resources carry their legal basis in ``share.condition`` and no share method (there is no
data access to describe). A resource marked open but 不予共享 is not treated as open.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date

from citylake.core.registry import Registration
from citylake.stages.publish.classification import category_name, item_name

NOT_SHARED = "不予共享"


def is_open(snapshot: dict) -> bool:
    return bool(snapshot["open"]["is_open"]) and snapshot["share"]["type"] != NOT_SHARED


def build_snapshot(reg: Registration, code: str, publish_date: date, related_codes: list[str]) -> dict:
    c = reg.classification
    not_shared = reg.share.type == NOT_SHARED
    key = set(reg.key)
    return {
        "resource": reg.resource,
        "code": code,
        "name": reg.name,
        "classification": {
            "category": c.category,
            "category_name": category_name(c.category),
            "item": c.item,
            "item_name": item_name(c.category, c.item),
            "catalog": c.catalog,
            "detail": c.detail,
            "prefix": c.prefix,
            "business": c.business,
        },
        "department": {"slug": reg.department, "name": reg.department_name},
        "provider": {"name": reg.provider.name, "code": reg.provider.code},
        "summary": reg.summary,
        "format": {
            "category": reg.format.category,
            "type": reg.format.type,
            "description": reg.format.description,
        },
        "items": [
            {
                "field": f.name,
                "item_name": f.title,
                "data_type": f.guideline_type[0],
                "data_type_name": f.guideline_type[1],
                "data_length": f.length,
                "sensitivity": f.sensitivity,
                "required": f.required,
                "key": f.name in key,
                "unit": f.unit,
                "description": f.description,
            }
            for f in reg.fields
        ],
        "share": {
            "type": reg.share.type,
            "condition": reg.share.condition,
            "method_category": None if not_shared else reg.share.method_category,
            "method_type": None if not_shared else reg.share.method_type,
        },
        "open": {
            "is_open": bool(reg.open.is_open) and not not_shared,
            "condition": reg.open.condition if reg.open.is_open and not not_shared else None,
        },
        "update_cycle": reg.update_cycle,
        "publish_date": publish_date.isoformat(),
        "related_codes": list(related_codes),
    }


def content_hash(snapshot: dict) -> str:
    text = json.dumps(snapshot, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def flatten(snapshot: dict) -> dict[str, object]:
    """Element path -> value; information items keyed by their field name."""
    out: dict[str, object] = {}

    def walk(prefix: str, value):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        elif isinstance(value, list) and prefix == "items":
            for item in value:
                for k, v in item.items():
                    if k != "field":
                        out[f"items[{item['field']}].{k}"] = v
        else:
            out[prefix] = value

    walk("", snapshot)
    return out


def element_changes(old: dict, new: dict) -> list[dict]:
    """[{element, old, new}] for every element that differs; an added or removed information item
    is one change ``items[<field>]``."""
    a, b = flatten(old), flatten(new)
    old_items = {i["field"] for i in old.get("items", [])}
    new_items = {i["field"] for i in new.get("items", [])}
    out = []
    for f in sorted(new_items - old_items):
        out.append({"element": f"items[{f}]", "old": None, "new": "added"})
    for f in sorted(old_items - new_items):
        out.append({"element": f"items[{f}]", "old": "present", "new": "removed"})
    gone = {f"items[{f}]." for f in old_items ^ new_items}
    for key in sorted(set(a) | set(b)):
        if any(key.startswith(g) for g in gone):
            continue
        if a.get(key) != b.get(key):
            out.append({"element": key, "old": a.get(key), "new": b.get(key)})
    if [i["field"] for i in old.get("items", [])] != [i["field"] for i in new.get("items", [])] and not (
        old_items ^ new_items
    ):
        out.append({"element": "items(order)", "old": [i["field"] for i in old["items"]],
                    "new": [i["field"] for i in new["items"]]})
    return out
