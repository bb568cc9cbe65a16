"""Defensive masking for values shown in the directory (STANDARDS.md section 6).

Curated data is already masked by the pipeline; the directory masks again by the registration's
mask kind before showing a sample, so a pipeline bug never puts a personal value on a page. Every
function is idempotent: masking a masked value gives the same value.
"""

from __future__ import annotations

from functools import lru_cache

from citylake.identifiers import divisions
from citylake.registry import FieldSpec

# 复姓: keep both characters of the surname.
COMPOUND_SURNAMES = frozenset(
    "欧阳 司马 上官 诸葛 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 司空 夏侯 令狐 端木 独孤 南宫 西门 轩辕 "
    "澹台 公冶 宗政 濮阳 太叔 申屠 钟离 闻人 赫连 呼延 万俟 淳于 单于 百里 东郭 呼延 羊舌 微生 梁丘 左丘 "
    "第五 拓跋 谷梁 乐正 段干 司寇 巫马 公西 漆雕 壤驷 公良 夹谷 宰父 颛孙 亓官 仉督 子车 鲜于 闾丘".split()
)
FULL = "****"

# Address: keep the leading administrative division names (省, 市/州, 区/县) as they appear in
# the shipped GB/T 2260 list, mask the rest.
_GENERIC_DIVISION_NAMES = {"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划", "省直辖行政单位"}


@lru_cache(maxsize=1)
def _division_names() -> tuple[frozenset[str], int]:
    names = frozenset(
        d.name for d in divisions().values() if len(d.name) >= 2 and d.name not in _GENERIC_DIVISION_NAMES
    )
    return names, max(len(n) for n in names)


def mask_cn_id(value: str) -> str:
    return value[:6] + "*" * (len(value) - 10) + value[-4:] if len(value) >= 11 else "*" * len(value)


def mask_mobile(value: str) -> str:
    return value[:3] + "*" * (len(value) - 7) + value[-4:] if len(value) >= 8 else "*" * len(value)


def mask_name(value: str) -> str:
    value = value.strip()
    keep = 2 if value[:2] in COMPOUND_SURNAMES and len(value) > 2 else 1
    if len(value) <= 1:
        return "*"
    return value[:keep] + "*" * (len(value) - keep)


def mask_address(value: str) -> str:
    value = value.strip()
    names, longest = _division_names()
    pos = 0
    for _ in range(3):  # province, prefecture, county
        for n in range(min(longest, len(value) - pos), 1, -1):
            if value[pos : pos + n] in names:
                pos += n
                break
        else:
            break
    kept = value[:pos]
    return kept if kept == value else kept + FULL


def mask_bank_account(value: str) -> str:
    return "*" * max(len(value) - 4, 0) + value[-4:] if len(value) > 4 else "*" * len(value)


MASKERS = {
    "cn_id": mask_cn_id,
    "mobile": mask_mobile,
    "name": mask_name,
    "address": mask_address,
    "bank_account": mask_bank_account,
    "full": lambda value: FULL,
}


def mask_kind(field: FieldSpec) -> str | None:
    """How a field is masked on a page: personal fields by their mask kind, restricted fields fully
    unless they name a kind, other fields not at all."""
    if field.sensitivity == "personal":
        return field.effective_mask or "full"
    if field.sensitivity == "restricted":
        return field.mask or "full"
    return None


def mask_value(field: FieldSpec, value):
    kind = mask_kind(field)
    if kind is None or value is None:
        return value
    text = str(value)
    if not text:
        return text
    return MASKERS[kind](text)
