"""Drop templates: the file a department's liaison fills in for a registered file-drop resource.

For each registration: ``<resource>_template.xlsx`` (sheet 1: the accepted header — every field's
``title`` in field order — and one example row of valid values; sheet 2 “填写说明”: one line per
field with its type, whether it is required, allowed values, format, the other accepted header
spellings and whether it is personal data) and ``<resource>_template.csv`` (header + example row
only, in the registration's declared encoding and delimiter). Both decode with every column mapped
(:mod:`citylake.stages.decode`), and the example values pass the conform checks
(docs/conform-rules.md). A SQL source has no drop, so no template (:class:`NoDropTemplate`).
"""

from __future__ import annotations

import codecs
import csv
import io
from datetime import date, datetime

from citylake.core.registry import GUIDELINE_TYPES, FieldSpec, Registration

SUFFIXES = ("xlsx", "csv")
DATA_SHEET = "报送数据"
HELP_SHEET = "填写说明 (How to fill in)"  # a sheet title may not contain "/"
HELP_COLUMNS = [
    "列名（表头） Column title",
    "字段名 Field",
    "数据类型 Type",
    "必填 Required",
    "允许值 Allowed values",
    "格式要求 Format",
    "其他可用表头 Other accepted headers",
    "个人信息 Personal data",
    "敏感级别 Sensitivity",
    "示例 Example",
    "说明 Notes",
]
SENSITIVITY = {"public": "公开", "internal": "内部", "personal": "个人信息", "restricted": "受限"}

# Known-valid identifiers (tests prove each passes citylake.core.identifiers.CHECKERS).
IDENTIFIER_EXAMPLES = {
    "uscc": "91110000802100433B",
    "cn_id": "11010519491231002X",
    "org_code": "802100433",
    "division_code": "110105",
    "mobile": "13800138000",
}
EXAMPLE_DATE = date(2024, 5, 1)
EXAMPLE_BIRTH_DATE = date(1949, 12, 31)  # the birth date inside the example citizen ID
EXAMPLE_TIMESTAMP = datetime(2024, 5, 1, 8, 0, 0)

FORMAT_HINTS = {
    "date": "日期，如 2024-05-01；也可写 2024/5/1、2024.5.1、2024年5月1日、20240501，或 Excel 日期单元格",
    "timestamp": "日期时间，如 2024-05-01 08:00:00；也可写 2024-05-01 08:00、2024/5/1 8时、20240501080000；"
                 "只写日期表示当日 0 时",
    "integer": "整数，可带千位分隔符（如 1,234）",
    "decimal": "数字，如 100.5，可带千位分隔符",
    "double": "数字，如 100.5，可带千位分隔符",
    "boolean": "是 / 否（也可写 true/false、yes/no、1/0）",
}
CHECK_HINTS = {
    "uscc": "18 位统一社会信用代码（GB 32100），校验位须正确",
    "cn_id": "18 位公民身份号码（GB 11643），校验位须正确，末位 X 大小写均可",
    "org_code": "9 位组织机构代码（GB 11714），可带“-”，校验位须正确",
    "division_code": "6 位行政区划代码（GB/T 2260 现行代码）",
    "mobile": "11 位手机号码，可带 +86 前缀、空格或“-”",
}


class NoDropTemplate(ValueError):
    """The resource is not delivered as dropped files (a SQL source): there is nothing to fill in."""


def require_file_drop(reg: Registration) -> None:
    if reg.source.kind != "file":
        raise NoDropTemplate(
            f"{reg.resource} is extracted from a database (sql source, connection {reg.source.conn_id!r}); "
            "departments drop no files for it, so it has no drop template"
        )


def file_names(resource: str) -> dict[str, str]:
    """suffix -> file name: ``<resource>_template.xlsx`` / ``.csv``."""
    return {s: f"{resource}_template.{s}" for s in SUFFIXES}


# ---- example values ------------------------------------------------------------------------
def _number_example(f: FieldSpec, integer: bool):
    value: float = 100 if integer else 100.5
    if f.max is not None and value > f.max:
        value = f.max if f.min is None else (f.min + f.max) / 2
    if f.min is not None and value < f.min:
        value = f.min
    return int(value) if integer else value


def _text_example(f: FieldSpec) -> str:
    t = f.title
    if f.mask == "name" or t.endswith("姓名"):
        return "张三"
    if f.mask == "address" or any(k in t for k in ("地址", "住址", "住所", "坐落")):
        return "郑州市金水区花园路1号"
    if f.mask == "bank_account":
        return "6222021234567890123"
    if "名称" in t and any(k in t for k in ("企业", "单位", "机构", "公司")):
        return "郑州市示例科技有限公司"
    if any(k in t for k in ("编码", "代码", "编号", "号码", "证号", "证书号")):
        return "0001"  # leading zero: the column is text
    return f"示例{t}"


def example_value(f: FieldSpec):
    """A valid value for ``f``, typed as it goes into a workbook cell (str, int, float, date, datetime)."""
    if f.check == "codelist":
        return next(iter(f.codes))
    if f.check in IDENTIFIER_EXAMPLES:
        return IDENTIFIER_EXAMPLES[f.check]
    if f.type == "date":
        return EXAMPLE_BIRTH_DATE if "出生" in f.title else EXAMPLE_DATE
    if f.type == "timestamp":
        return EXAMPLE_TIMESTAMP
    if f.type == "integer":
        return _number_example(f, integer=True)
    if f.type in ("decimal", "double", "money"):
        return _number_example(f, integer=False)
    if f.type == "boolean":
        return "是"
    return _text_example(f)


def example_text(f: FieldSpec) -> str:
    value = example_value(f)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def template_rows(reg: Registration) -> list[list[str]]:
    """[header, example row] as text: each field's title, in field order."""
    require_file_drop(reg)
    return [[f.title for f in reg.fields], [example_text(f) for f in reg.fields]]


# ---- instructions ----------------------------------------------------------------------------
def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def allowed_values(f: FieldSpec) -> str:
    if f.codes:
        return "；".join(f"{code}={meaning}" if code != meaning else code for code, meaning in f.codes.items()) \
            + "（填代码或名称均可）"
    if f.type == "boolean":
        return "是；否"
    return "—"


def format_hint(f: FieldSpec) -> str:
    bits = []
    if f.check in CHECK_HINTS:
        hint = CHECK_HINTS[f.check]
        if f.check == "cn_id" and f.legacy15 == "convert":
            hint += "；15 位旧号码自动转为 18 位"
        bits.append(hint)
    if f.check == "codelist":
        bits.append("填“允许值”中的一项")
    if f.type == "money":
        bits.append(f"金额，单位：{f.unit}；只填数字（如 100.5）即按{f.unit}计，也可带单位（如 100.5{f.unit}）；"
                    "外币请写明币种（如 120万美元）")
    elif f.type in FORMAT_HINTS:
        bits.append(FORMAT_HINTS[f.type])
    if f.unit and f.type != "money":
        bits.append(f"单位：{f.unit}")
    if f.min is not None and f.max is not None:
        bits.append(f"取值范围：{_fmt(f.min)} ~ {_fmt(f.max)}")
    elif f.min is not None:
        bits.append(f"取值范围：≥ {_fmt(f.min)}")
    elif f.max is not None:
        bits.append(f"取值范围：≤ {_fmt(f.max)}")
    if not bits and f.type in ("string", "text"):
        bits.append("文本")
    return "；".join(bits)


def instruction_rows(reg: Registration) -> list[list[str]]:
    """One line per field, in field order (the columns of :data:`HELP_COLUMNS`)."""
    rows = []
    for f in reg.fields:
        type_name, type_code = GUIDELINE_TYPES[f.type][1], GUIDELINE_TYPES[f.type][0]
        notes = []
        if f.name in reg.key:
            notes.append("主键（与其他主键列一起唯一确定一条记录）" if len(reg.key) > 1 else "主键（每条记录唯一）")
        elif f.unique:
            notes.append("不得重复")
        if f.sensitivity == "personal":
            notes.append("个人信息，入湖后按规定脱敏展示")
        if f.description:
            notes.append(f.description)
        rows.append([
            f.title,
            f.name,
            f"{type_name}（{type_code}，{f.type}）",
            "是" if f.required else "否",
            allowed_values(f),
            format_hint(f),
            "、".join(f.headers[1:]) or "—",
            "是" if f.sensitivity == "personal" else "否",
            SENSITIVITY[f.sensitivity],
            example_text(f),
            "；".join(notes),
        ])
    return rows


def general_notes(reg: Registration) -> list[str]:
    src = reg.source
    key = "、".join(reg.field_map[k].title for k in reg.key)
    notes = [
        f"“{_data_sheet(reg)}”工作表第 1 行是表头，第 2 行是示例：报送前请删除示例行，否则它会作为真实数据入库。",
        "列的顺序不限；表头也可用“其他可用表头”中的写法；必填列不可缺少。空值留空即可。",
        f"每条记录由 {key} 唯一确定。",
    ]
    if src.format == "csv":
        delimiter = "逗号" if (src.delimiter or ",") == "," else f"“{src.delimiter}”"
        notes.append(f"报送格式：CSV，编码 {src.encoding}，分隔符为{delimiter}，文件名须匹配 {src.pattern}。"
                     f"在本工作簿填写后请另存为 CSV（{src.encoding} 编码），或直接填写同名的 CSV 模板。")
    elif src.format == "xlsx":
        where = f"工作表“{src.sheet}”" if src.sheet else "第一个工作表"
        notes.append(f"报送格式：XLSX（读取{where}），文件名须匹配 {src.pattern}。")
    else:
        notes.append(f"报送格式：JSON（每行一个 JSON 对象，或一个对象数组），文件名须匹配 {src.pattern}；"
                     "键用上表的列名或其他可用表头。本模板说明各字段和示例值。")
    notes.append("身份证号、代码、编号等列已设为文本格式，以免 Excel 去掉前导 0 或把长数字改成科学计数法。")
    return notes


# ---- files -----------------------------------------------------------------------------------
def _data_sheet(reg: Registration) -> str:
    return reg.source.sheet or DATA_SHEET


def _is_text_column(f: FieldSpec) -> bool:
    return f.type in ("string", "text") or f.check is not None


def xlsx_bytes(reg: Registration) -> bytes:
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    require_file_drop(reg)
    header_font = Font(bold=True)
    fill = PatternFill("solid", fgColor="DDE6F0")
    example_font = Font(italic=True, color="7F7F7F")

    wb = Workbook()
    ws = wb.active
    ws.title = _data_sheet(reg)
    ws.append([f.title for f in reg.fields])
    for col, f in enumerate(reg.fields, start=1):
        letter = get_column_letter(col)
        head = ws.cell(row=1, column=col)
        head.font, head.fill = header_font, fill
        head.comment = Comment(f"{f.name}；{'必填' if f.required else '选填'}；{format_hint(f) or f.type}", "citylake")
        cell = ws.cell(row=2, column=col, value=example_value(f))
        cell.font = example_font
        dim = ws.column_dimensions[letter]
        dim.width = max(12, len(f.title) * 2 + 4)
        # Column styles apply to what the liaison types later: text keeps leading zeros and long IDs.
        if _is_text_column(f):
            dim.number_format = cell.number_format = "@"
        elif f.type == "date":
            dim.number_format = cell.number_format = "yyyy-mm-dd"
        elif f.type == "timestamp":
            dim.number_format = cell.number_format = "yyyy-mm-dd hh:mm:ss"
        if f.codes:
            choices = ",".join(f.codes)
            if len(choices) <= 250 and not any("," in c or '"' in c for c in f.codes):
                # A hint, not a lock: conform also accepts a code's meaning.
                dv = DataValidation(type="list", formula1=f'"{choices}"', allow_blank=True, showErrorMessage=False)
                dv.add(f"{letter}2:{letter}10000")
                ws.add_data_validation(dv)
    ws["A2"].comment = Comment("示例行：报送前请删除。Example row: delete it before you submit.", "citylake")
    ws.freeze_panes = "A2"

    help_ws = wb.create_sheet(HELP_SHEET)
    help_ws.append(HELP_COLUMNS)
    for row in instruction_rows(reg):
        help_ws.append(row)
    help_ws.append([])
    for note in general_notes(reg):
        help_ws.append([note])
    for cell in help_ws[1]:
        cell.font, cell.fill = header_font, fill
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    for col, width in enumerate([20, 18, 18, 8, 30, 44, 30, 10, 10, 22, 30], start=1):
        help_ws.column_dimensions[get_column_letter(col)].width = width
    for row in help_ws.iter_rows(min_row=2, max_row=len(reg.fields) + 1):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    help_ws.freeze_panes = "B2"

    wb.properties.title = f"{reg.name} 报送模板"
    wb.properties.creator = "citylake"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def csv_bytes(reg: Registration) -> bytes:
    """Header + example row, in the declared encoding (utf-8-sig writes the BOM) and delimiter."""
    rows = template_rows(reg)
    buf = io.StringIO()
    csv.writer(buf, delimiter=reg.source.delimiter or ",", lineterminator="\r\n").writerows(rows)
    encoding = codecs.lookup(reg.source.encoding).name
    try:
        return buf.getvalue().encode(encoding)
    except UnicodeEncodeError as exc:
        bad = buf.getvalue()[exc.start:exc.end]
        raise ValueError(f"{reg.resource}: the template text {bad!r} cannot be written in the declared "
                         f"encoding {reg.source.encoding}") from None


def files(reg: Registration) -> dict[str, bytes]:
    """file name -> bytes, XLSX first."""
    names = file_names(reg.resource)
    return {names["xlsx"]: xlsx_bytes(reg), names["csv"]: csv_bytes(reg)}
