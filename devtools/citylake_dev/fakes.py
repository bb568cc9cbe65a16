"""Realistic value pools for the sample-export generator (``citylake generate``) and the
demo source database.

Names, companies, institutions, roads and monitoring stations of Zhengzhou (郑州市).
Everything here is plain data plus small pure functions that take a ``random.Random``,
so the generator stays deterministic for a seed. Every character used is in GBK, so
the pools can be written into GBK exports.
"""

from __future__ import annotations

import bisect
import itertools
import random

# ---- people ------------------------------------------------------------------------------
# Common surnames with rough relative frequencies (Henan leans to 王 李 张 刘 陈 杨 赵 郭).
SURNAMES: tuple[tuple[str, int], ...] = (
    ("王", 90), ("李", 85), ("张", 85), ("刘", 60), ("陈", 40), ("杨", 38), ("赵", 30), ("郭", 28),
    ("黄", 20), ("周", 20), ("吴", 18), ("徐", 17), ("孙", 17), ("马", 16), ("朱", 15), ("胡", 15),
    ("高", 15), ("林", 10), ("何", 10), ("罗", 10), ("宋", 12), ("郑", 11), ("梁", 9), ("谢", 8),
    ("韩", 10), ("唐", 8), ("冯", 9), ("于", 9), ("董", 9), ("程", 9), ("曹", 8), ("袁", 7),
    ("邓", 7), ("许", 9), ("沈", 6), ("曾", 5), ("彭", 6), ("吕", 7), ("苏", 7), ("卢", 6),
    ("蒋", 6), ("蔡", 6), ("贾", 8), ("丁", 7), ("魏", 8), ("薛", 6), ("叶", 5), ("阎", 5),
    ("余", 5), ("潘", 5), ("杜", 6), ("戴", 4), ("夏", 5), ("钟", 4), ("汪", 4), ("田", 7),
    ("任", 6), ("姜", 5), ("范", 6), ("方", 5), ("石", 6), ("姚", 5), ("谭", 3), ("廖", 3),
    ("邹", 3), ("熊", 3), ("金", 4), ("陆", 3), ("郝", 6), ("孔", 4), ("白", 5), ("崔", 6),
    ("康", 4), ("毛", 4), ("邱", 3), ("秦", 5), ("江", 3), ("史", 5), ("顾", 2), ("侯", 5),
    ("邵", 3), ("孟", 5), ("龙", 2), ("万", 3), ("段", 4), ("雷", 3), ("钱", 2), ("汤", 3),
    ("尹", 3), ("常", 5), ("武", 5), ("乔", 4), ("贺", 3), ("申", 3), ("牛", 4), ("楚", 2),
    ("欧阳", 1), ("司马", 1), ("上官", 1), ("诸葛", 1),
)
GIVEN_MALE = (
    "伟 强 磊 军 勇 杰 涛 斌 超 明 刚 平 辉 鹏 华 飞 鑫 波 宇 浩 凯 健 俊 帆 帅 旭 宁 龙 林 阳 "
    "建 国 志 文 海 峰 东 晨 博 昊 然 轩 睿 泽 子 豪 振 庆 成 亮 松 德 新 卫 兵 红 利 民 军 嘉 铭 "
    "一 航 家 乐"
).split()
GIVEN_FEMALE = (
    "芳 娜 敏 静 丽 艳 娟 霞 燕 玲 婷 雪 慧 莹 倩 琳 颖 洁 梅 琴 云 莉 萍 红 秀 英 兰 凤 洋 佳 "
    "欣 怡 悦 涵 萱 雨 彤 诗 梦 瑶 思 晶 璐 薇 丹 月 妍 可 馨 晓 亚 春 小 美 珍 翠 桂 艺"
).split()
GIVEN_MALE = tuple(dict.fromkeys(GIVEN_MALE))
GIVEN_FEMALE = tuple(dict.fromkeys(GIVEN_FEMALE))
# A few names of the Uyghur/Hui style written with the middle dot, as they appear in registers.
DOT_NAMES = ("阿依古丽·买买提", "艾力·吐尔逊", "古丽娜尔·艾买提", "买买提·依明", "热依汗·阿不都")


class Weighted:
    """A weighted choice with the cumulative weights computed once (``random.choices`` redoes them)."""

    __slots__ = ("cum", "total", "values")

    def __init__(self, pairs):
        self.values = [v for v, _ in pairs]
        self.cum = list(itertools.accumulate(w for _, w in pairs))
        self.total = self.cum[-1]

    def pick(self, rng: random.Random):
        return self.values[bisect.bisect_right(self.cum, rng.random() * self.total)]


_WEIGHTED: dict[int, tuple] = {}


def wchoice(rng: random.Random, pairs):
    """Weighted pick from a constant tuple of (value, weight) pairs; its Weighted is built once."""
    hit = _WEIGHTED.get(id(pairs))
    if hit is None or hit[0] is not pairs:
        hit = _WEIGHTED[id(pairs)] = (pairs, Weighted(pairs))
    return hit[1].pick(rng)


_SURNAME = Weighted(SURNAMES)


def person_name(rng: random.Random, male: bool) -> str:
    if rng.random() < 0.002:
        return rng.choice(DOT_NAMES)
    surname = _SURNAME.pick(rng)
    pool = GIVEN_MALE if male else GIVEN_FEMALE
    given = rng.choice(pool) + (rng.choice(pool) if rng.random() < 0.75 else "")
    return surname + given


# ---- places ------------------------------------------------------------------------------
# Roads by current county-level division of Zhengzhou (GB/T 2260 code).
ROADS: dict[str, tuple[str, ...]] = {
    "410102": (
        "中原路",
        "建设路",
        "桐柏路",
        "伏牛路",
        "嵩山北路",
        "秦岭路",
        "化工路",
        "须水河路",
        "百花路",
        "陇海西路",
    ),
    "410103": (
        "大学路",
        "京广路",
        "长江路",
        "航海中路",
        "嵩山南路",
        "兴华街",
        "陇海中路",
        "马寨路",
        "淮河路",
        "汝河路",
    ),
    "410104": (
        "紫荆山路",
        "城东路",
        "南关街",
        "商城路",
        "东大街",
        "航海东路",
        "港湾路",
        "英协路",
        "中州大道",
        "南三环",
    ),
    "410105": ("花园路", "文化路", "经三路", "农业路", "黄河路", "金水路", "纬五路", "东风路", "丰产路", "未来路"),
    "410106": ("济源路", "中心路", "新安路", "工业路", "登封路", "汝南路"),
    "410108": ("天河路", "开元路", "长兴路", "英才街", "江山路", "清华园路", "文化北路"),
    "410122": ("商都大道", "青年路", "建设南路", "官渡大道", "万胜路", "牟州大道"),
    "410171": ("第八大街", "航海东路", "经北四路", "经南五路", "第三大街", "经开第十五大街"),
    "410172": ("科学大道", "长椿路", "莲花街", "翠竹街", "梧桐街", "西三环路", "枫杨街"),
    "410173": ("郑港四路", "迎宾大道", "新港大道", "四港联动大道", "云港路", "航兴路"),
    "410181": ("杜甫路", "新兴路", "嵩山路", "人民路", "桐本路"),
    "410182": ("索河路", "京城路", "中原西路", "演武路", "郑上路"),
    "410183": ("青屏大街", "开阳路", "西大街", "溱水路", "长乐路"),
    "410184": ("轩辕路", "中华路", "人民路", "新华路", "金城路", "文化路"),
    "410185": ("少林大道", "中岳大街", "嵩阳路", "崇高路", "书院河路"),
}
GENERIC_ROADS = ("人民路", "建设路", "解放路", "中山路", "文化路", "新华路", "健康路", "和平路")
# Rough share of records per district (the built-up districts dominate).
DISTRICT_WEIGHTS: dict[str, int] = {
    "410102": 10,
    "410103": 9,
    "410104": 8,
    "410105": 16,
    "410106": 2,
    "410108": 4,
    "410122": 4,
    "410171": 5,
    "410172": 6,
    "410173": 5,
    "410181": 3,
    "410182": 4,
    "410183": 3,
    "410184": 5,
    "410185": 2,
}
COMMUNITIES = ("绿城", "建业", "正商", "碧桂园", "康桥", "永威", "鑫苑", "名门", "万科", "亚星", "升龙", "金科")
COMMUNITY_SUFFIX = ("小区", "花园", "家园", "华府", "城", "苑", "公馆", "新城")


def full_place(district_name: str) -> str:
    """郑州市金水区 / 郑州高新技术产业开发区 / 郑州市巩义市."""
    return district_name if district_name.startswith("郑州") else "郑州市" + district_name


def road(rng: random.Random, district_code: str) -> str:
    return rng.choice(ROADS.get(district_code, GENERIC_ROADS))


def street_address(rng: random.Random, district_code: str, district_name: str, kind: str = "any") -> str:
    """An address in 郑州市…区…路…号 form; ``kind`` is ``home``, ``office`` or ``any``."""
    head = ("河南省" if rng.random() < 0.15 else "") + full_place(district_name)
    base = f"{head}{road(rng, district_code)}{rng.randint(1, 299)}号"
    if kind == "any":
        kind = rng.choice(("home", "office", "plain"))
    if kind == "home":
        if rng.random() < 0.3:
            base = f"{head}{road(rng, district_code)}{rng.choice(COMMUNITIES)}{rng.choice(COMMUNITY_SUFFIX)}"
        else:
            base += "院"
        return f"{base}{rng.randint(1, 28)}号楼{rng.randint(1, 4)}单元{rng.randint(1, 33)}{rng.randint(1, 4):02d}室"
    if kind == "office":
        if rng.random() < 0.5:
            return f"{base}{rng.randint(1, 30)}层{rng.randint(1, 30):02d}号"
        return f"{base}{rng.randint(1, 12)}号楼{rng.randint(1, 26)}{rng.randint(1, 20):02d}室"
    return base


# ---- organizations -------------------------------------------------------------------------
BRAND_CHARS = (
    "华鑫恒泰瑞丰宏达博远金盾天成嘉禾永盛汇通鼎力中原宇信德润昌隆万豪新兴海川正和安邦卓越汉唐同创"
    "东方明辉凯旋聚合益民惠康锦程志诚佳悦豫立森林航宸睿弘盈祥源顺广泽晟旺荣景"
)
INDUSTRIES = (
    "科技",
    "信息技术",
    "商贸",
    "建筑工程",
    "物流",
    "餐饮管理",
    "房地产开发",
    "电子商务",
    "医药",
    "教育咨询",
    "文化传媒",
    "机械设备",
    "农业开发",
    "新能源",
    "环保科技",
    "物业服务",
    "劳务派遣",
    "装饰工程",
    "食品",
    "汽车销售",
    "网络科技",
    "实业",
    "供应链管理",
    "建材",
    "企业管理咨询",
    "智能科技",
    "生物科技",
    "广告",
)
FORMS = (("有限公司", 70), ("有限责任公司", 12), ("股份有限公司", 6), ("集团有限公司", 2))
REGIONS = (("郑州", 45), ("河南", 30), ("郑州市", 5), ("河南省", 5), ("", 15))
SHOP_GOODS = (
    "烩面馆",
    "胡辣汤店",
    "便利店",
    "理发店",
    "水果店",
    "五金店",
    "干洗店",
    "超市",
    "汽修部",
    "饭店",
    "烟酒店",
    "手机店",
)
COOP_GOODS = ("大蒜种植", "蔬菜种植", "红枣", "养殖", "农机服务", "花卉苗木", "中药材种植", "葡萄种植")
TOWNS = ("刘集镇", "白沙镇", "官渡镇", "姚家镇", "大孟镇", "郭店镇", "龙湖镇", "薛店镇", "高山镇", "大冶镇")
SCHOOLS = ("中学", "小学", "实验学校", "外国语学校")
ORGANS = (
    "人民政府办公室",
    "发展和改革委员会",
    "教育局",
    "财政局",
    "人力资源和社会保障局",
    "住房保障和房地产管理局",
    "城市管理局",
    "卫生健康委员会",
    "市场监督管理局",
    "生态环境局",
    "交通运输局",
    "民政局",
    "应急管理局",
)
SOCIAL = (
    "软件行业协会",
    "物流与采购协会",
    "餐饮与饭店行业协会",
    "建筑业协会",
    "汽车流通行业协会",
    "电子商务协会",
    "温州商会",
    "福建商会",
)
HOSPITAL = ("人民医院", "中医院", "妇幼保健院", "疾病预防控制中心")


def _short_district(name: str) -> str:
    for prefix in ("郑州市", "郑州"):
        name = name.removeprefix(prefix)
    return name


_REGIONS = Weighted(REGIONS)
_FORMS = Weighted(FORMS)


def enterprise_name(rng: random.Random, district_name: str) -> str:
    region = _REGIONS.pick(rng)
    brand = rng.choice(BRAND_CHARS) + rng.choice(BRAND_CHARS)
    name = f"{region}{brand}{rng.choice(INDUSTRIES)}{_FORMS.pick(rng)}"
    if rng.random() < 0.05:
        name += _short_district(district_name).replace("市", "") + "分公司"
    return name


def individual_business_name(rng: random.Random, district_name: str, surname: str) -> str:
    return f"{full_place(district_name)}{surname}记{rng.choice(SHOP_GOODS)}"


def cooperative_name(rng: random.Random, district_name: str) -> str:
    brand = rng.choice(BRAND_CHARS) + rng.choice(BRAND_CHARS)
    return f"{full_place(district_name)}{rng.choice(TOWNS)}{brand}{rng.choice(COOP_GOODS)}专业合作社"


def institution_name(rng: random.Random, district_name: str) -> str:
    r = rng.random()
    if r < 0.5:
        return f"郑州市第{rng.randint(1, 120)}{rng.choice(SCHOOLS)}"
    short = _short_district(district_name)
    return f"郑州市{short}{rng.choice(HOSPITAL)}" if not short.startswith("郑州") else f"{short}{rng.choice(HOSPITAL)}"


def organ_name(rng: random.Random, district_name: str) -> str:
    short = _short_district(district_name)
    if rng.random() < 0.5:
        return f"郑州市{rng.choice(ORGANS)}"
    return f"郑州市{short}{rng.choice(ORGANS)}"


def social_org_name(rng: random.Random) -> str:
    return ("郑州市" if rng.random() < 0.7 else "河南省") + rng.choice(SOCIAL)


# ---- environment -----------------------------------------------------------------------------
# (station code, station name, county code) — national (13xxA) and municipal stations of Zhengzhou.
STATIONS: tuple[tuple[str, str, str], ...] = (
    ("1322A", "市监测站", "410105"),
    ("1323A", "郑纺机", "410102"),
    ("1324A", "银行学校", "410103"),
    ("1325A", "供水公司", "410105"),
    ("1326A", "烟厂", "410104"),
    ("1327A", "河医大", "410103"),
    ("1328A", "岗李水库", "410108"),
    ("1329A", "四十七中", "410104"),
    ("1330A", "经开区管委", "410171"),
    ("1331A", "北区建设指挥部", "410105"),
    ("ZZ410106", "上街区环保局", "410106"),
    ("ZZ410122", "中牟县环保局", "410122"),
    ("ZZ410172", "高新区管委会", "410172"),
    ("ZZ410173", "航空港区管委会", "410173"),
    ("ZZ410181", "巩义市环境监测站", "410181"),
    ("ZZ410182", "荥阳市环境监测站", "410182"),
    ("ZZ410183", "新密市环境监测站", "410183"),
    ("ZZ410184", "新郑市环境监测站", "410184"),
    ("ZZ410185", "登封市环境监测站", "410185"),
)

# Mobile prefixes in use (the 4th+ digits are random).
MOBILE_PREFIXES = (
    "130",
    "131",
    "132",
    "133",
    "134",
    "135",
    "136",
    "137",
    "138",
    "139",
    "147",
    "150",
    "151",
    "152",
    "153",
    "155",
    "156",
    "157",
    "158",
    "159",
    "166",
    "173",
    "175",
    "176",
    "177",
    "178",
    "180",
    "181",
    "182",
    "183",
    "184",
    "185",
    "186",
    "187",
    "188",
    "189",
    "191",
    "198",
    "199",
)

# Free text for string fields the generator has no better idea for (never a null token).
REMARKS = ("正常", "已核实", "按期申报", "系统导入", "见附件", "待复核", "已归档", "变更登记", "首次登记", "数据补录")
