"""Reason codes for quarantined rows, with the Chinese and English text used in receipts.

A quarantine row carries one or more reason strings. Field-level reasons are
written ``<code>:<field>`` (e.g. ``uscc_check:uscc``); row-level reasons are the
bare code (e.g. ``duplicate_row``). The generator's truth file counts the same
strings, so a test can compare them one to one.
"""

from __future__ import annotations

# code -> (中文, English)
REASONS: dict[str, tuple[str, str]] = {
    # row level
    "column_count": ("列数与表头不一致", "row has more or fewer columns than the header"),
    "malformed_line": ("行格式错误，无法解析", "line could not be parsed"),
    "encoding_damage": ("文本含乱码（编码转换损坏）", "text damaged by a wrong character decoding"),
    "duplicate_row": ("与本批次前一行完全重复", "exact duplicate of an earlier row in the batch"),
    "duplicate_key": ("主键与本批次前一行重复", "key repeats an earlier row in the batch"),
    "missing_column": ("文件缺少必填列", "the file has no column for a required field"),
    # field level: presence and types
    "required": ("必填项为空", "required value is missing"),
    "bad_date": ("日期无法识别", "date not recognised"),
    "bad_timestamp": ("日期时间无法识别", "date-time not recognised"),
    "bad_number": ("数值无法识别", "number not recognised"),
    "bad_money": ("金额无法识别", "amount of money not recognised"),
    "bad_boolean": ("逻辑值无法识别", "yes/no value not recognised"),
    "out_of_range": ("数值超出允许范围", "value outside the allowed range"),
    "not_in_codelist": ("代码不在代码表中", "value is not in the code list"),
    # 统一社会信用代码 GB 32100
    "uscc_format": ("统一社会信用代码格式错误", "USCC has the wrong length or characters"),
    "uscc_check": ("统一社会信用代码校验码错误", "USCC check character is wrong"),
    "uscc_regno15": ("填写的是旧15位工商注册号", "an old 15-digit business registration number, not a USCC"),
    "uscc_masked": ("统一社会信用代码已被遮盖", "USCC is masked"),
    "uscc_text": ("统一社会信用代码列混入文字（错列）", "text from another column in the USCC column"),
    # 公民身份号码 GB 11643
    "cn_id_format": ("公民身份号码格式错误", "citizen ID has the wrong length or characters"),
    "cn_id_check": ("公民身份号码校验码错误", "citizen ID check character is wrong"),
    "cn_id_birth": ("公民身份号码出生日期无效", "citizen ID birth date is not a real past date"),
    "cn_id_area": ("公民身份号码地址码不存在", "citizen ID address code is in no GB/T 2260 edition"),
    "cn_id_legacy15": ("旧15位身份证号码", "legacy 15-digit citizen ID"),
    # 组织机构代码 GB 11714
    "org_code_format": ("组织机构代码格式错误", "organization code has the wrong length or characters"),
    "org_code_check": ("组织机构代码校验码错误", "organization code check character is wrong"),
    # 行政区划代码 GB/T 2260
    "division_format": ("行政区划代码格式错误", "division code is not 6 digits"),
    "division_unknown": ("行政区划代码不存在或已撤销", "division code is not in the GB/T 2260 list"),
    # mobile
    "mobile_format": ("手机号码格式错误", "not an 11-digit mainland mobile number"),
}

ROW_LEVEL = {"column_count", "malformed_line", "encoding_damage", "duplicate_row", "duplicate_key"}


def reason(code: str, field: str | None = None) -> str:
    if code not in REASONS:
        raise KeyError(f"unknown reason code {code!r}")
    return f"{code}:{field}" if field else code


def split_reason(text: str) -> tuple[str, str | None]:
    code, _, field = text.partition(":")
    return code, (field or None)


def describe(text: str, lang: str = "zh") -> str:
    code, field = split_reason(text)
    zh, en = REASONS.get(code, (code, code))
    base = zh if lang == "zh" else en
    return f"{base}（{field}）" if field and lang == "zh" else (f"{base} ({field})" if field else base)


def observed_text(observed: dict | None) -> tuple[str, str]:
    """What a failed quality rule found, short (Chinese, English), or empty strings: the
    quarantine gate's rate, or how many rows broke the rule. Status, receipts and the quality
    page say it the same way."""
    o = observed or {}
    if "quarantined" in o and "received" in o:
        rows_zh = f"隔离 {o['quarantined']:,} / {o['received']:,} 行"
        rows_en = f"{o['quarantined']:,} of {o['received']:,} rows quarantined"
        rate = o.get("observed_value")
        if rate is None:
            return f"实际{rows_zh}", f"found {rows_en}"
        return f"实际 {rate * 100:.1f}%，{rows_zh}", f"found {rate * 100:.1f}%, {rows_en}"
    if o.get("unexpected_count"):
        return f"{o['unexpected_count']:,} 行不符合", f"{o['unexpected_count']:,} rows do not meet it"
    return "", ""
