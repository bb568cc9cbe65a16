"""Classification of government information resources (信息资源分类, 政务信息资源目录编制指南).

A resource is classified by 类 (1 digit) / 项 (2 digits) / 目 (3 digits) / 细目 (variable, may be
empty). The names of 类 and of the 项 of 类 1 and 2 are fixed by the guideline; the 项 are numbered in
the order the guideline lists them (01 人口 … 05 电子证照; 01 公共服务 … 12 应急维稳), which is also how
the registrations use them. 项 of 类 3 are organs (307 = provinces and cities with independent
planning status), 目 and 细目 are local: they are shown by their code when no name is known.
"""

from __future__ import annotations

from dataclasses import dataclass

CATEGORY_NAMES = {"1": "基础信息资源", "2": "主题信息资源", "3": "部门信息资源"}

ITEM_NAMES = {
    "1": ["人口", "法人单位", "自然资源和空间地理", "社会信用", "电子证照"],
    "2": [
        "公共服务", "健康保障", "社会保障", "食品药品安全", "安全生产", "价格监管",
        "能源安全", "信用体系", "城乡建设", "社区治理", "生态环保", "应急维稳",
    ],
    "3": {"07": "省（自治区、直辖市）及计划单列市"},
}


def category_name(category: str) -> str | None:
    return CATEGORY_NAMES.get(category)


def item_name(category: str, item: str) -> str | None:
    names = ITEM_NAMES.get(category)
    if isinstance(names, dict):
        return names.get(item)
    if names and item.isdigit() and 1 <= int(item) <= len(names):
        return names[int(item) - 1]
    return None


@dataclass(frozen=True)
class Level:
    """One level of the classification tree (a SKOS concept in the DCAT export)."""

    level: str  # 类 / 项 / 目 / 细目
    key: str  # the cumulative code: "1", "101", "101001", "101001xx"
    code: str  # this level's own digits: "1", "01", "001", "xx"
    name: str | None

    @property
    def label(self) -> str:
        return f"{self.code} {self.name}" if self.name else self.code


def levels(category: str, item: str, catalog: str, detail: str = "") -> list[Level]:
    """The path from 类 down to the most specific level present (细目 only when given)."""
    out = [
        Level("类", category, category, category_name(category)),
        Level("项", category + item, item, item_name(category, item)),
        Level("目", category + item + catalog, catalog, None),
    ]
    if detail:
        out.append(Level("细目", category + item + catalog + detail, detail, None))
    return out
