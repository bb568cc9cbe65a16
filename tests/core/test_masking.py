"""citylake.core.masking: the Python rules and the Spark expressions agree, and the rules hold."""

from __future__ import annotations

import random
import re
import subprocess
import sys
from functools import cache

import pytest

from citylake.core.masking import (
    COMPOUND_SURNAMES,
    FULL,
    KINDS,
    _division_names,
    address_pattern,
    mask_address,
    mask_column,
    mask_name,
    mask_text,
    mask_value,
)
from citylake.core.registry import FieldSpec

CN_IDS = [
    "11010519491231002X", "11010519491231002x", "410105198001010016", "440305200012311234",
    "110105491231002", "410102800101123",  # legacy 15 digits
    "11010519491231", "1101051949", "12345678901", "1234", "1", "",
    " 11010519491231002X ", "\u300011010519491231002X\u3000", "11010519491231002X\n",
    "110105********002X", "110105*****1002", "**********", "****",
]
MOBILES = [
    "13812345678", "15900001111", "19912345678", "1381234567", "138123456", "62345678",
    "010-62345678", "+8613812345678", "138 1234 5678", "138****5678", "***", "", "\t13812345678 ",
]
NAMES = [
    "张三", "王小明", "李", "欧阳修文", "欧阳", "欧阳修", "司马相如", "诸葛亮", "呼延灼", "闾丘露薇",
    "上官婉儿", "慕容", "东方不败", "张欧阳", "买买提·艾力", "𠮷野家", "Wang Wei", "  张三 ", "\u3000李四",
    "张*", "欧阳**", "欧*", "*", "**", "", "  ", "张三\u0085",
]
ADDRESSES = [
    "北京市朝阳区建设路18号幸福小区3栋501",
    "建设路18号幸福小区3栋501",
    "浙江省杭州市西湖区文三路",
    "浙江省杭州市西湖区",
    "内蒙古自治区呼和浩特市新城区新华大街1号",
    "内蒙古自治区锡林郭勒盟东乌珠穆沁旗乌里雅斯太镇",
    "河南省郑州市金水区花园路1号院3号楼",
    "郑州市中原区建设路99号",
    "河南省郑州市金水区中原区建设路",  # a fourth division name is not kept
    "广东省梅州市梅县区程江镇",  # 梅县区, not 梅县
    "广东省梅州市梅县程江镇",
    "湖北省武汉市东西湖区",  # 东西湖区, not 东西湖 + …
    "北京市",
    "北京",
    "北京市 朝阳区建设路",
    " 北京市朝阳区建设路 ",
    "朝阳区",
    "县城关镇",
    "市辖区幸福路",
    "花园路1号",
    "区",
    "",
    "北京市朝阳区****",
    "****",
    "新疆维吾尔自治区克孜勒苏柯尔克孜自治州阿图什市光明路",
    "秦皇岛市经济技术开发区龙海道",
]
DATES = ["1990-05-17", "19900517", "1990年5月17日", " 1990/5/17 ", "5/17/90", "１９９０-05-17", "1990"]
VALUES = CN_IDS + MOBILES + NAMES + ADDRESSES + DATES + [None]


@cache
def _division_chains(count: int = 400) -> tuple[str, ...]:
    """Random chains of division names (0..4, prefix pairs such as 梅县/梅县区 included) and tails."""
    rng = random.Random(2260)
    names = sorted(_division_names()[0])
    known = set(names)
    prefixes = sorted({n[:k] for n in names for k in range(2, len(n)) if n[:k] in known})
    tails = ["", "建设路18号", "区1号", "县城", "****", "市场街", " 幸福小区"]
    out = []
    for _ in range(count):
        pool = prefixes if rng.random() < 0.3 else names
        chain = [rng.choice(pool) for _ in range(rng.randint(0, 4))]
        out.append("".join(chain) + rng.choice(tails))
    return tuple(out)


def _spark_masks(spark, values: list[str | None], kinds=KINDS, twice: bool = False) -> dict[str, list]:
    from pyspark.sql import functions as F

    df = spark.createDataFrame(list(enumerate(values)), "i int, v string")
    cols = []
    for kind in kinds:
        c = mask_column(kind, F.col("v"))
        cols.append((mask_column(kind, c) if twice else c).alias(kind))
    rows = df.select("i", *cols).orderBy("i").collect()
    return {kind: [r[kind] for r in rows] for kind in kinds}


@pytest.mark.spark
def test_spark_and_python_agree_on_every_kind(spark):
    got = _spark_masks(spark, VALUES)
    for kind in KINDS:
        expected = [mask_text(kind, v) for v in VALUES]
        diffs = [(v, e, g) for v, e, g in zip(VALUES, expected, got[kind], strict=True) if e != g]
        assert not diffs, f"{kind}: (value, python, spark) {diffs}"


@pytest.mark.spark
def test_spark_and_python_agree_on_division_name_chains(spark):
    values = _division_chains()
    got = _spark_masks(spark, values, kinds=("address",))["address"]
    diffs = [(v, mask_address(v), g) for v, g in zip(values, got, strict=True) if mask_address(v) != g]
    assert not diffs, diffs[:10]


@pytest.mark.spark
def test_spark_masks_are_idempotent(spark):
    once, twice = _spark_masks(spark, VALUES), _spark_masks(spark, VALUES, twice=True)
    assert once == twice


@pytest.mark.spark
def test_spark_mask_of_non_string_columns(spark):
    from pyspark.sql import functions as F

    row = spark.range(1).select(mask_column("bank_account", F.lit(6222021234567890)).alias("b")).first()
    assert row.b == "************7890"


def test_python_masks_are_idempotent():
    values = VALUES + list(_division_chains())
    for kind in KINDS:
        for v in values:
            once = mask_text(kind, v)
            assert mask_text(kind, once) == once, (kind, v)


def test_address_regex_is_the_loop():
    """The regex curate runs, checked without Spark (Python re has the same semantics here)."""
    pattern = re.compile(address_pattern())
    for v in ADDRESSES + list(_division_chains()):
        v = v.strip()
        assert pattern.sub(lambda m: m.group(1) + FULL, v) == mask_address(v), v


def test_address_keeps_at_most_the_county():
    assert mask_address("建设路18号幸福小区3栋501") == FULL  # no leading division: nothing kept
    assert mask_address("北京市朝阳区建设路18号幸福小区3栋501") == "北京市朝阳区****"
    assert mask_address("浙江省杭州市西湖区文三路") == "浙江省杭州市西湖区****"
    assert mask_address("内蒙古自治区呼和浩特市新城区新华大街1号") == "内蒙古自治区呼和浩特市新城区****"
    assert mask_address("内蒙古自治区锡林郭勒盟东乌珠穆沁旗乌里雅斯太镇") == "内蒙古自治区锡林郭勒盟东乌珠穆沁旗****"
    assert mask_address("河南省郑州市金水区中原区建设路") == "河南省郑州市金水区****"
    assert mask_address("广东省梅州市梅县区程江镇") == "广东省梅州市梅县区****"
    assert mask_address("浙江省杭州市西湖区") == "浙江省杭州市西湖区"  # only division names: as is
    assert mask_address("市辖区幸福路") == FULL and mask_address("县城关镇") == FULL
    assert mask_address(" 北京市朝阳区建设路 ") == "北京市朝阳区****"
    assert mask_address("") == ""


def test_names_keep_the_surname():
    assert mask_name("欧阳修文") == "欧阳**" and mask_name("张三") == "张*" and mask_name("王小明") == "王**"
    assert mask_name("欧阳") == "欧*"  # two characters: a single surname and a given name
    assert mask_name("闾丘露薇") == "闾丘**" and mask_name("呼延灼") == "呼延*"
    assert mask_name("李") == "*" and mask_name("  张三 ") == "张*"
    assert {"欧阳", "司马", "万俟", "呼延", "闾丘", "单于"} <= COMPOUND_SURNAMES
    assert all(len(s) == 2 for s in COMPOUND_SURNAMES)


def test_partial_masks_and_short_values():
    assert mask_text("cn_id", "11010519491231002X") == "110105********002X"
    assert mask_text("cn_id", "110105491231002") == "110105*****1002"
    assert mask_text("cn_id", "11010519491231") == "**************"  # shorter than any ID: all hidden
    assert mask_text("mobile", "13812345678") == "138****5678"
    assert mask_text("mobile", "62345678") == "********"
    assert mask_text("bank_account", "6222021234567890123") == "***************0123"
    assert mask_text("bank_account", "12345678") == "****5678" and mask_text("bank_account", "1234567") == "*******"
    assert mask_text("full", "anything") == FULL and mask_text("full", "") == FULL
    assert all(mask_text(kind, None) is None for kind in KINDS)


def test_mask_value_by_field():
    id_no = FieldSpec(name="id_no", title="身份证号", type="string", sensitivity="personal", check="cn_id")
    secret = FieldSpec(name="note", title="备注", type="string", sensitivity="restricted")
    plain = FieldSpec(name="gender", title="性别", type="string")
    assert mask_value(id_no, "11010519491231002X") == "110105********002X"
    assert mask_value(secret, "x") == FULL
    assert mask_value(plain, "1") == "1" and mask_value(id_no, None) is None


def test_unknown_kind_and_lazy_pyspark():
    with pytest.raises(ValueError, match="unknown mask kind"):
        mask_column("email", None)
    with pytest.raises(ValueError, match="unknown mask kind"):
        mask_text("email", "x")
    code = "import sys, citylake.core.masking; assert 'pyspark' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_date_masked_to_its_year():
    assert [mask_text("year", v) for v in DATES] == ["1990", "1990", "1990", "1990", "****", "****", "1990"]
    assert mask_text("year", None) is None


@pytest.mark.spark
def test_the_keyed_hash_is_hmac_and_not_a_plain_digest(spark):
    import hashlib
    import hmac

    from pyspark.sql import functions as F

    from citylake.core.masking import key_id, keyed_hash, keyed_hash_column

    rows = [("11010519491231002X", None), ("110105194912310021", "b"), ("", "c")]
    df = spark.createDataFrame(rows, "a string, b string")
    for secret in (b"short secret", bytes(range(100))):  # a key longer than SHA-256's block is hashed first
        got = [r.k for r in df.select(keyed_hash_column([F.col("a"), F.col("b")], secret).alias("k")).collect()]
        want = [hmac.new(secret, "\u001f".join(v for v in r if v is not None).encode(), hashlib.sha256).hexdigest()
                for r in rows]
        assert got == want == [keyed_hash(list(r), secret) for r in rows]
    plain = hashlib.sha256(b"11010519491231002X").hexdigest()
    assert keyed_hash(["11010519491231002X"], b"s") != plain, "a guessed ID cannot be hashed to the key"
    assert keyed_hash(["x"], b"one") != keyed_hash(["x"], b"two")
    assert key_id(b"one") != key_id(b"two") and len(key_id(b"one")) == 16
