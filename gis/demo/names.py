"""Name pools for the demo district (private helper of :mod:`gis.demo`).

Plausible, synthetic names in the style of Xuchang's Weidu district: the
street (街道) names are modelled on the real ones, everything below is made up.
"""

from __future__ import annotations

import numpy as np


def _words(text: str) -> list[str]:
    """A name pool written as one space-separated string (compact to read and edit)."""
    return text.split()


DISTRICT_NAME = "魏都区"
DISTRICT_RESPONSIBLE = "许昌市魏都区人民政府"

#: The four streets around the old town take the old cross streets' names.
STREET_NAMES_BY_DIRECTION = {
    "west": "西大街道",
    "east": "东大街道",
    "south": "南关街道",
    "north": "北大街道",
}
OTHER_STREET_NAMES = _words(
    "新兴街道 五一路街道 文峰街道 丁庄街道 七里店街道 高桥营街道 半截河街道 西关街道"
)

COMMUNITY_STEMS = _words(
    "裴山庙 新村 河西 文惠 丁庄 玉皇阁 天宝 文峰 七里店 八一 五一 "
    "建安 春秋 灞陵 莲城 清潩 曹魏 魏武 建设 健康 学院 劳动 前进 "
    "解放 胜利 光明 和平 幸福 长青 桃园 西湖 东城 南关 北关 钟楼 "
    "鼓楼 文庙 关帝庙 三里桥 五里岗 半截河 高桥营 大路陈 小庄 张庄 "
    "李庄 刘庄 许庄 杨庄 王庄 魏庄 苗店 后菜园 前菜园 东菜园 西菜园 "
    "毓秀 平安 兴华 兴业 金桥 银河 华佗 颍昌 许由 帝都 龙华 汇景 "
    "紫云 锦绣 翠园 景福 盛世 嘉和 鑫源 富康 惠民 团结 友爱 东风 "
    "红旗 向阳 育才 文明 铁路 电厂 纺织 烟厂 机械 化工 电业 邮电 "
    "园林 水利 秋湖 瑞祥 宏运 永兴 南海 北海 东湖 望田 芙蓉 春晖"
)

ARTERIAL_NAMES = _words(
    "魏武大道 八一路 劳动路 天宝路 许继大道 五一路 建安大道 新兴路 魏文路 莲城大道 学院路"
)
SECONDARY_NAMES = _words(
    "健康路 颍昌路 前进路 解放路 延安路 毓秀路 光明路 建设路 七一路 "
    "灞陵路 金汇路 永昌路 银杏路 紫荆路 兴业路 育才路 长青路 团结路 "
    "和平路 北海路 南海街 东环路 西环路 文化路 商业街 胜利街 春秋路 "
    "曹魏路 许由路 华佗路 魏都路 东关街 西关街 北关街 烟厂路 纺织路 "
    "电厂路 铁路街 平安路 幸福路 桃园路 景福路 文兴路 瑞祥路 宏运路"
)
RIVER_NAMES = ["清潩河", "护城河"]

_LANE_FIRST = list(
    "文武福寿康宁安平和顺兴隆昌盛德仁义礼智信忠孝春秋梅兰竹菊松柏槐柳桃杏枣"
    "榆东西南北前后新老石井仓营府庙塔桥池园庄坊市楼阁台钟鼓"
)
_LANE_SECOND = list(
    "兴盛安和平顺福康乐泰祥瑞华荣昌隆丰裕民义德贤贵宁静清明光阳春秀林园泉池井桥台坊门口院楼"
)
_LANE_SUFFIX = ["巷", "巷", "巷", "胡同", "街", "里"]

SURNAMES = list(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋"
    "蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段"
    "雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN_CHARS = list(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰建国红梅志文军丽萍"
    "辉鹏晓燕飞宇浩凯婷雪琳欣怡佳颖慧博文斌海燕春霞桂芝淑珍永红金凤"
)

DEDICATED_KINDS = {
    "enterprise": [
        "许昌{}机械有限公司",
        "许昌{}电气股份有限公司",
        "许昌{}发制品有限公司",
        "河南{}实业有限公司",
        "许昌{}食品有限公司",
        "许昌{}物流园",
    ],
    "school": ["许昌市第{}中学", "魏都区{}实验小学", "许昌{}职业技术学校", "魏都区第{}小学"],
    "hospital": ["许昌市{}人民医院", "魏都区{}中医院", "许昌{}妇幼保健院"],
}
_ORDINALS = "一二三四五六七八九十"
_BRANDS = ["华瑞", "恒达", "鑫源", "宏昌", "金汇", "中原", "天成", "博远", "瑞丰", "永盛", "德润"]


def chinese_number(n: int) -> str:
    """1 → 一, 12 → 十二, 23 → 二十三 (for ordinals in names)."""
    if n <= 10:
        return _ORDINALS[n - 1]
    tens, ones = divmod(n, 10)
    head = "" if tens == 1 else _ORDINALS[tens - 1]
    return head + "十" + (_ORDINALS[ones - 1] if ones else "")


def local_street_names(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct lane names (福寿巷, 槐荫胡同 …), reproducible from ``rng``."""
    suffixes = dict.fromkeys(_LANE_SUFFIX)  # distinct, in order
    pool = [a + b + s for a in _LANE_FIRST for b in _LANE_SECOND for s in suffixes if a != b]
    taken = set(ARTERIAL_NAMES) | set(SECONDARY_NAMES)
    pool = [p for p in pool if p not in taken]
    order = rng.permutation(len(pool))
    if n > len(pool):  # never for the demo's size; keep the names unique anyway
        return [
            pool[order[i % len(pool)]]
            + ("" if i < len(pool) else chinese_number(i // len(pool) + 1))
            for i in range(n)
        ]
    return [pool[i] for i in order[:n]]


def person_names(rng: np.random.Generator, n: int) -> list[str]:
    """Synthetic Chinese personal names, one or two given characters."""
    weights = 1.0 / np.arange(1, len(SURNAMES) + 1) ** 0.8  # common surnames are common
    surname = rng.choice(len(SURNAMES), size=n, p=weights / weights.sum())
    first = rng.integers(0, len(GIVEN_CHARS), n)
    second = rng.integers(0, len(GIVEN_CHARS), n)
    single = rng.random(n) < 0.3
    return [
        SURNAMES[s] + GIVEN_CHARS[f] + ("" if one else GIVEN_CHARS[g])
        for s, f, g, one in zip(surname, first, second, single, strict=True)
    ]


def phone_numbers(rng: np.random.Generator, n: int) -> list[str]:
    """Distinct fake mobile numbers (138xxxxxxxx style)."""
    prefixes = np.array(
        [
            "138",
            "139",
            "137",
            "136",
            "135",
            "150",
            "151",
            "152",
            "158",
            "159",
            "186",
            "187",
            "188",
            "189",
            "177",
            "199",
        ]
    )
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        k = n - len(out)
        pre = prefixes[rng.integers(0, len(prefixes), k)]
        body = rng.integers(0, 10**8, k)
        for p, b in zip(pre, body, strict=True):
            number = f"{p}{b:08d}"
            if number not in seen:
                seen.add(number)
                out.append(number)
    return out


def dedicated_name(rng: np.random.Generator, kind: str, used: set[str]) -> str:
    """A unique institution name of ``kind`` (enterprise, school, hospital)."""
    for _ in range(1000):
        template = DEDICATED_KINDS[kind][rng.integers(0, len(DEDICATED_KINDS[kind]))]
        filler = (
            chinese_number(int(rng.integers(1, 20)))
            if "第" in template
            else _BRANDS[rng.integers(0, len(_BRANDS))]
        )
        name = template.format(filler)
        if name not in used:
            used.add(name)
            return name
    raise RuntimeError("ran out of institution names")  # pragma: no cover
