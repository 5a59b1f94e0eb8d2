"""Geocoding incident addresses against a local door-plate gazetteer.

Incidents from the 12345 hotline often come with an address only
("魏都区新兴街道裴山庙社区建设路１２号３栋２单元"). They are located by looking the
address up in a gazetteer of building / door-plate addresses with WGS84
coordinates: no online geocoder, so no GCJ-02 offsets and no data leaving the
service.

Both sides go through :func:`normalize_address`, which maps the common ways of
writing the same place to one string:

- NFKC: full-width digits, letters, spaces and punctuation become half-width
  (``"１２号"`` → ``"12号"``); letters are upper-cased; all whitespace goes.
- Text in brackets is dropped: it is a comment (``"(原纺织厂)"``), not a locator.
- ``#`` after a number means 号 (``"3#楼"`` → ``"3号楼"``); dash variants
  (－ — – ‐ …), ``/`` and ``~`` become ``-``, kept only between two numbers
  or letters. A few traditional forms of the address words (號 樓 棟 單 …)
  are simplified.
- Chinese numerals are converted to Arabic only in front of an address word
  (号 栋 幢 座 单元 室 层 户, and 门 楼 after a building), so road names such as
  五一路 or 八一路 are untouched: ``"三号楼二单元"`` → ``"3号楼2单元"``.
- Buildings: 栋 / 幢 / 座 / 号栋 / 号楼 / ``#楼`` → ``"N号楼"``; ``"12号院"`` →
  ``"12号"`` (a courtyard number is the door plate).
- Units: ``"N门"`` right after a building (the Beijing/Tianjin habit) → ``"N单元"``.
- Short forms after a door plate: ``"12号3-2-201"`` → ``"12号3号楼2单元"`` and
  ``"12号3-201"`` → ``"12号3号楼"``.
- Room and floor are dropped at the end of the address (``"201室"``, ``"2楼"``,
  ``"2层201"``, a bare number of 3+ digits): a door-plate gazetteer resolves to
  a building or unit at best, and rooms are written in too many ways to match.
- A leading province (``"河南省"``, ``"广西壮族自治区"``) and up to two leading
  cities (``"许昌市"``, ``"许昌市长葛市"``) are dropped when more address follows:
  callers omit them as often as they write them.
- What is kept: district / street / community names, the road or compound
  name, door plate, building and unit.

Matching (:meth:`Gazetteer.geocode`) then works on the parts of the normalised
address (:func:`parse_address`). The district / street / community prefix is
*not* part of the lookup key, because callers write it inconsistently; it only
removes candidates whose prefix names a different area at the same level. In
order, the first level with candidates wins:

1. ``"exact"``: road/compound + door plate + building + unit all equal.
2. ``"building"``: the unit is dropped and the building matched; a building
   the gazetteer only knows by its units gets their centroid.
3. ``"street_number"``: road + door plate (``"建设路12号"``); when several
   buildings share the plate, their centroid.

A centroid is only taken when all candidates lie within ``spread_tolerance_m``
(100 m) of each other; otherwise the address is ``"ambiguous"``: a wrong
location is worse than none, because it sends the incident to the wrong grid.
"""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from gis.errors import GridmapError, ValidationError
from gis.vocabulary import AREA_LEVELS

__all__ = [
    "GAZETTEER_COLUMNS",
    "MATCH_LEVELS",
    "AddressParts",
    "Gazetteer",
    "normalize_address",
    "normalize_addresses",
    "parse_address",
]

#: Columns a gazetteer must have (``micro_grid_code`` is optional).
GAZETTEER_COLUMNS = ("address", "lon", "lat")

#: Values of the ``match`` column, most precise first.
MATCH_LEVELS = ("exact", "building", "street_number")

_EARTH_RADIUS_M = 6_371_008.8

# -- normalisation tables ------------------------------------------------------------
# Full-width ASCII (U+FF01–FF5E) and the ideographic space are mapped by hand
# before NFKC, whose own decomposition of them is several times slower.
_FULL_WIDTH_CHAR = re.compile("[\uff01-\uff5e\u3000]")
_FULL_WIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
# Traditional forms of the address words, and dash look-alikes NFKC leaves alone.
_CHAR_MAP = str.maketrans(
    {
        "號": "号",
        "樓": "楼",
        "棟": "栋",
        "單": "单",
        "層": "层",
        "門": "门",
        "區": "区",
        "縣": "县",
        "鎮": "镇",
        "鄉": "乡",
        "‐": "-",
        "‒": "-",
        "–": "-",
        "—": "-",
        "―": "-",
        "−": "-",
        "ー": "-",
        "─": "-",
        # "3/2/201" and "12~14号" separate numbers: deleting the mark would merge them.
        "/": "-",
        "~": "-",
    }
)
_MAPPED_CHAR = re.compile("[" + re.escape("".join(map(chr, _CHAR_MAP))) + "]")
# Deleted: whitespace (after NFKC every space is U+0020; the rest of Python's \s
# is control characters), zero-width characters and punctuation.
_DELETED = re.compile(
    "["
    + re.escape(
        " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\u2028\u2029\u200b\u200c\u200d\u2060\ufeff"
        ",.;:!?'\"、。·•“”‘’《》「」『』()[]【】〔〕<>{}*_\\|"
    )
    + "]+"
)
_BRACKET = re.compile(r"[(\[【〔]")
_BRACKETED = re.compile(r"\([^()]*\)|\[[^\[\]]*\]|【[^【】]*】|〔[^〔〕]*〕")
_HASH = re.compile(r"(?<=[0-9A-Z])#")
_DASHES = re.compile(r"-+")
_LOOSE_DASH = re.compile(r"(?<![0-9A-Z])-|-(?![0-9A-Z])")

_CN_DIGITS = {
    "〇": 0,
    "零": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CN = "〇零一二两三四五六七八九十百"
_CN_ANY = re.compile(f"[{_CN}]")
# Numerals are converted only in front of an address word; 门 and 楼 are words
# too common in names (三门峡, 三楼 as a place) to be trusted without a building
# or door plate right before them.
_CN_BEFORE_WORD = re.compile(f"[{_CN}]+(?=号|栋|幢|座|单元|室|层|户)")
_CN_AFTER_BUILDING = re.compile(f"(?<=号楼|单元|\\d号)[{_CN}]+(?=门|楼)")

_COURTYARD = re.compile(r"(?<=\d)号院")
_BUILDING = re.compile(r"(?<=[0-9A-Z])号?[栋幢座]")
# Replacements that reuse groups are functions: Python 3.11 expands "\1" templates slowly.
_UNIT_GATE = re.compile(r"(?<=号楼)(\d+)门")
_DOOR_B_U_R = re.compile(r"(?<=\d号)([0-9A-Z]+)-(\d+)-\d{3,4}$")
_DOOR_B_R = re.compile(r"(?<=\d号)([0-9A-Z]+)-\d{3,4}$")
_BUILDING_U_R = re.compile(r"(?<=号楼)(\d+)-\d{3,4}$")
# A floor and/or room after the last building, unit or door plate. A bare
# number needs 3+ digits to count as a room: "12号3" may well be building 3.
_ROOM_TAIL_END = frozenset("0123456789室户房楼层")
_ROOM_TAIL = re.compile(
    r"(?:(?<=号楼)|(?<=单元)|(?<=号))"
    r"(?:-?\d+[楼层](?:-?\d+[室户房]?)?"  # floor, maybe with a room: 2楼, 2层201
    r"|-?\d+-\d{3,}[室户房]?"  # floor-room: 2-201
    r"|-?\d+[室户房]"  # room: 201室
    r"|-?\d{3,})$"  # bare room: 201, 1203
)

_PROVINCE = re.compile(
    r"^(?:[\u4e00-\u9fff]{2,3}省|(?:内蒙古|广西壮族|西藏|宁夏回族|新疆维吾尔)自治区"
    r"|(?:香港|澳门)特别行政区)(?=.)"
)
# Not before 场 (市场 market), 政/府/委 (市政府), 民 (市民), 花 (城市花园), 中 (市中心…):
# there the 市 belongs to a name, not to a city.
# The name before 市 never holds an address word: "金桥社区市宁巷" is a community
# followed by 市宁巷 (a lane), not a city called 金桥社区.
_CITY = re.compile(
    r"^(?:(?![区街路巷里村镇乡道社])[\u4e00-\u9fff]){2,4}?(?:市|自治州)"
    r"(?![场政府委民花中])(?=.)"
)

# -- parsing tables ------------------------------------------------------------------
_PARTS = re.compile(
    r"^(?P<head>.*?)(?P<door>\d+(?:-\d+)?号(?!楼))?(?P<building>[0-9A-Z]+(?:-[0-9A-Z]+)?号楼)?"
    r"(?P<unit>\d+单元)?$",
    re.DOTALL,
)
# One administrative name at the start of the head. 区 after 小/园/校/景/厂/矿/片
# is a compound or campus (阳光小区), not a district.
_ADMIN = re.compile(
    r"[\u4e00-\u9fff]{2,8}?(?P<suffix>社区|街道|(?<![小园校景厂矿片])区|县|旗|镇|乡)"
)
_ADMIN_LEVEL = {
    "社区": "community",
    "街道": "street",
    "镇": "street",
    "乡": "street",
    "区": "district",
    "县": "district",
    "旗": "district",
}
_ADMIN_LEVELS = AREA_LEVELS[:3]  # district, street, community: named in addresses


# -- normalisation -------------------------------------------------------------------
def normalize_address(text: str | None) -> str:
    """Normalise one Chinese address for matching (rules in the module docstring).

    Parameters
    ----------
    text : str or None
        The address as written. ``None`` and NaN give ``""``.

    Returns
    -------
    str
        The canonical form, ``""`` when nothing is left.

    Raises
    ------
    ValidationError
        If ``text`` is neither a string nor missing.

    Examples
    --------
    >>> normalize_address("河南省许昌市魏都区建设路１２号３栋２单元201室")
    '魏都区建设路12号3号楼2单元'
    >>> normalize_address("建设路十二号 三号楼 二门")
    '建设路12号3号楼2单元'
    """
    if _is_missing(text):
        return ""
    if not isinstance(text, str):
        raise ValidationError(f"text must be a string, got {type(text).__name__}: {text!r}")
    s = _clean_characters(text)
    s = _unify_numbers(s)
    s = _unify_building_and_unit(s)
    s = _drop_room(s)
    return _drop_province_and_city(s)


def normalize_addresses(addresses: pd.Series | Sequence[str | None]) -> pd.Series:
    """Vectorised :func:`normalize_address`: each distinct address is normalised once.

    Parameters
    ----------
    addresses : Series or sequence of str
        Missing values (None, NaN, NA) give ``""``.

    Returns
    -------
    Series
        Same index and name as ``addresses`` (a RangeIndex for a plain sequence).
    """
    series = _as_series(addresses, "addresses")
    codes, normalized, _ = _normalize_distinct(series)
    return pd.Series(
        np.asarray(normalized + [""], dtype=object)[codes],
        index=series.index,
        name=series.name,
        dtype=object,
    )


def _normalize_distinct(
    series: pd.Series, *, strict: bool = True
) -> tuple[np.ndarray, list[str], list[tuple[int, object]]]:
    """Codes into the distinct values, their normalised forms and the non-strings.

    Hotline data repeats addresses a lot: each distinct one is normalised once.
    Missing values get code -1. Non-string values normalise to ``""`` and are
    returned as (first position, value); with ``strict`` they raise instead
    (the error's rows are index labels).
    """
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    bad = {i for i, u in enumerate(uniques) if not isinstance(u, str)}
    problems = [(int(np.flatnonzero(codes == i)[0]), uniques[i]) for i in sorted(bad)]
    if problems and strict:
        raise ValidationError(
            "addresses must be strings",
            [
                {
                    "row": _plain(series.index[pos]),
                    "reason": f"not a string: {type(value).__name__} {value!r}",
                }
                for pos, value in problems
            ],
        )
    # tolist() first: iterating an Arrow-backed array element by element is slow.
    normalized = ["" if i in bad else normalize_address(u) for i, u in enumerate(uniques.tolist())]
    return codes, normalized, problems


# Each step below looks for its trigger characters before running a regex or a
# str.translate (slow on CJK text): most addresses need only a few of the steps,
# and normalisation is most of the cost of geocoding a batch.
def _clean_characters(text: str) -> str:
    s = text.translate(_FULL_WIDTH) if _FULL_WIDTH_CHAR.search(text) else text
    s = unicodedata.normalize("NFKC", s)
    if _BRACKET.search(s):
        s = _BRACKETED.sub("", s)
    s = _DELETED.sub("", s).upper()
    if _MAPPED_CHAR.search(s):
        s = s.translate(_CHAR_MAP)
    if "#" in s:
        s = _HASH.sub("号", s).replace("#", "")
    if "-" in s:
        s = _LOOSE_DASH.sub("", _DASHES.sub("-", s))
    return s


def _unify_numbers(s: str) -> str:
    if _CN_ANY.search(s):
        s = _CN_BEFORE_WORD.sub(_arabic, s)
    return s


def _arabic(match: re.Match) -> str:
    return str(_chinese_to_int(match.group()))


def _chinese_to_int(numeral: str) -> int:
    """十二 → 12, 二十三 → 23, 一百零五 → 105; without 十/百 digit by digit: 二〇一 → 201."""
    if "十" not in numeral and "百" not in numeral:
        return int("".join(str(_CN_DIGITS[ch]) for ch in numeral))
    total = current = 0
    for ch in numeral:
        if ch == "百":
            total, current = total + (current or 1) * 100, 0
        elif ch == "十":
            total, current = total + (current or 1) * 10, 0
        else:
            current = _CN_DIGITS[ch]
    return total + current


def _unify_building_and_unit(s: str) -> str:
    if "院" in s:
        s = _COURTYARD.sub("号", s)
    if "栋" in s or "幢" in s or "座" in s:
        s = _BUILDING.sub("号楼", s)
    if _CN_ANY.search(s):
        s = _CN_AFTER_BUILDING.sub(_arabic, s)
    if "门" in s:
        s = _UNIT_GATE.sub(lambda m: m[1] + "单元", s)
    if "-" in s:
        s = _DOOR_B_U_R.sub(lambda m: f"{m[1]}号楼{m[2]}单元", s)
        s = _DOOR_B_R.sub(lambda m: m[1] + "号楼", s)
        s = _BUILDING_U_R.sub(lambda m: m[1] + "单元", s)
    return s


def _drop_room(s: str) -> str:
    return _ROOM_TAIL.sub("", s) if s and s[-1] in _ROOM_TAIL_END else s


def _drop_province_and_city(s: str) -> str:
    if "省" in s or "区" in s:
        s = _PROVINCE.sub("", s)
    # A prefecture city, then a county-level city under it (许昌市长葛市).
    for _ in range(2 if "市" in s or "州" in s else 0):
        s = _CITY.sub("", s)
    return s


# -- parsing -------------------------------------------------------------------------
class AddressParts(NamedTuple):
    """A normalised address split into administrative prefix and locator.

    ``district``, ``street`` and ``community`` are the administrative names
    written before the road or compound name ``place``; ``door`` (``"12号"``),
    ``building`` (``"3号楼"``) and ``unit`` (``"2单元"``) follow it. Absent
    parts are ``None``; ``place`` may be ``""`` (``"3号楼"`` alone).
    """

    district: str | None
    street: str | None
    community: str | None
    place: str
    door: str | None
    building: str | None
    unit: str | None

    @property
    def locator(self) -> str:
        """Place + door plate + building + unit: the key of an ``"exact"`` match."""
        return self.place + (self.door or "") + (self.building or "") + (self.unit or "")

    @property
    def building_key(self) -> str | None:
        """Place + door plate + building, or None without a building."""
        return self.place + (self.door or "") + self.building if self.building else None

    @property
    def plate_key(self) -> str | None:
        """Road + door plate (``"建设路12号"``), or None without a door plate."""
        return self.place + self.door if self.door else None

    def level_keys(self) -> list[tuple[str, str]]:
        """(match level, lookup key) pairs this address can be looked up by, best first."""
        keys = [("exact", self.locator)]
        if self.building_key:
            keys.append(("building", self.building_key))
        if self.plate_key:
            keys.append(("street_number", self.plate_key))
        return keys

    def admin(self) -> dict[str, str]:
        """The administrative names present, by level."""
        return {
            level: name for level in _ADMIN_LEVELS if (name := getattr(self, level)) is not None
        }


def parse_address(text: str | None) -> AddressParts:
    """Normalise ``text`` and split it into :class:`AddressParts`.

    Examples
    --------
    >>> p = parse_address("魏都区新兴街道裴山庙社区建设路１２号３栋２单元")
    >>> p.district, p.street, p.community, p.place, p.door, p.building, p.unit
    ('魏都区', '新兴街道', '裴山庙社区', '建设路', '12号', '3号楼', '2单元')
    """
    return _parse(normalize_address(text))


def _parse(normalized: str) -> AddressParts:
    match = _PARTS.match(normalized)
    assert match is not None  # every group is optional and the head is ".*?"
    admin, place = _split_admin(match["head"])
    return AddressParts(
        admin.get("district"),
        admin.get("street"),
        admin.get("community"),
        place,
        match["door"],
        match["building"],
        match["unit"],
    )


def _split_admin(head: str) -> tuple[dict[str, str], str]:
    # Leading administrative names only, and never the whole head: in
    # "裴山庙社区3号楼" the community *is* the place the building is in.
    admin: dict[str, str] = {}
    pos = 0
    while (m := _ADMIN.match(head, pos)) and m.end() < len(head):
        admin.setdefault(_ADMIN_LEVEL[m["suffix"]], m.group())
        pos = m.end()
    return admin, head[pos:]


# -- the gazetteer -------------------------------------------------------------------
class _Hit(NamedTuple):
    lon: float
    lat: float
    match: str | None
    matched_address: str | None
    reason: str | None
    micro_grid_code: str | None


class Gazetteer:
    """Building / door-plate addresses with WGS84 coordinates, indexed for geocoding.

    Parameters
    ----------
    frame : DataFrame
        Columns ``address`` (str), ``lon`` and ``lat`` (WGS84 degrees), and
        optionally ``micro_grid_code``. The index labels are the row numbers
        used in error reports.
    duplicate_tolerance_m : float, default 50
        Rows whose addresses normalise to the same string are one entry: the
        first is kept and the others listed in :attr:`duplicates`, as long as
        they lie within this distance of the first. Farther apart, the file
        contradicts itself and is refused.
    spread_tolerance_m : float, default 100
        Several entries matching an address at the same level (the units of a
        building, the buildings behind one door plate) are merged into their
        centroid only if no two of them are farther apart than this.

    Attributes
    ----------
    entries : DataFrame
        The entries kept: ``row`` (the index label in ``frame``), ``address``,
        ``lon``, ``lat``, ``micro_grid_code`` if given, and ``key`` (the
        normalised address).
    duplicates : DataFrame
        Rows dropped as duplicates, same columns plus ``duplicate_of`` (the
        ``row`` kept).

    Raises
    ------
    ValidationError
        Missing columns, an empty frame, or rows with an empty address,
        non-numeric / non-finite / out-of-range coordinates, or duplicates
        farther apart than ``duplicate_tolerance_m``; ``problems`` lists every
        such row with its reason.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        *,
        duplicate_tolerance_m: float = 50.0,
        spread_tolerance_m: float = 100.0,
    ):
        _check_tolerance("duplicate_tolerance_m", duplicate_tolerance_m)
        _check_tolerance("spread_tolerance_m", spread_tolerance_m)
        self.duplicate_tolerance_m = float(duplicate_tolerance_m)
        self.spread_tolerance_m = float(spread_tolerance_m)
        work = _validated(frame)
        self.entries, self.duplicates = _merge_duplicates(work, self.duplicate_tolerance_m)
        self._build_index()

    @classmethod
    def from_file(cls, path: str | Path, *, encoding: str = "utf-8-sig", **kwargs) -> Gazetteer:
        """Load a gazetteer from a CSV (UTF-8, BOM allowed) or Parquet file.

        Parameters
        ----------
        path : path-like
            ``.csv`` or ``.parquet`` / ``.pq``.
        encoding : str, default "utf-8-sig"
            Of a CSV file; ``"gb18030"`` reads files saved as GBK.
        **kwargs
            Passed to :class:`Gazetteer` (tolerances).
        """
        path = Path(path)
        if not path.exists():
            raise GridmapError(f"gazetteer file not found: {path}")
        suffix = path.suffix.lower()
        if suffix not in (".csv", ".parquet", ".pq"):
            raise ValidationError(
                f"gazetteer file {path.name}: unknown format {suffix!r}; "
                "expected .csv, .parquet or .pq"
            )
        try:
            if suffix == ".csv":
                # Codes are text: read as numbers they would lose leading zeros.
                frame = pd.read_csv(
                    path, encoding=encoding, dtype={"address": str, "micro_grid_code": str}
                )
            else:
                frame = pd.read_parquet(path)
        except UnicodeDecodeError as exc:
            raise GridmapError(
                f"cannot read {path.name}: not {encoding} text ({exc.reason}); "
                "for a GBK file pass encoding='gb18030'"
            ) from exc
        except (ValueError, OSError) as exc:  # pandas/arrow parse errors derive from these
            raise GridmapError(f"cannot read {path.name}: {exc}") from exc
        return cls(frame, **kwargs)

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return (
            f"Gazetteer({len(self)} entries, {len(self.duplicates)} duplicates merged, "
            f"spread_tolerance_m={self.spread_tolerance_m:g})"
        )

    # -- lookup ----------------------------------------------------------------------
    def geocode(self, addresses: pd.Series | Sequence[str | None]) -> pd.DataFrame:
        """Locate addresses; one output row per input, in the input's order.

        Parameters
        ----------
        addresses : Series or sequence of str
            Missing values (None, NaN) are allowed and reported as empty.

        Returns
        -------
        DataFrame
            Indexed like ``addresses`` (a RangeIndex for a plain sequence), with
            ``lon``, ``lat`` (WGS84; NaN when not found), ``match`` (one of
            :data:`MATCH_LEVELS`, or None), ``matched_address`` (the gazetteer's
            address as written when one entry matched, the normalised key when
            a centroid of several was taken), ``reason`` (None when found), and
            ``micro_grid_code`` when the gazetteer has that column (None for a
            centroid whose entries disagree).

        Raises
        ------
        ValidationError
            If ``addresses`` is a single string or holds non-string values.
        """
        series = _as_series(addresses, "addresses")
        codes, normalized, _ = _normalize_distinct(series)
        cache: dict[str, _Hit] = {}
        hits = [
            cache[k] if k in cache else cache.setdefault(k, self._resolve(k)) for k in normalized
        ]
        hits.append(_miss("empty address"))  # for code -1: a missing input
        return self._to_frame(hits, codes, series.index)

    def _to_frame(self, hits: list[_Hit], codes: np.ndarray, index: pd.Index) -> pd.DataFrame:
        columns = list(zip(*hits, strict=True))
        out: dict[str, object] = {
            "lon": np.asarray(columns[0], dtype=float)[codes],
            "lat": np.asarray(columns[1], dtype=float)[codes],
        }
        names = ["match", "matched_address", "reason"]
        if self._codes is not None:
            names.append("micro_grid_code")
        for name in names:
            # object dtype keeps None as None (a str dtype would turn it into NaN)
            out[name] = pd.Series(
                np.asarray(columns[_Hit._fields.index(name)], dtype=object)[codes], dtype=object
            )
        frame = pd.DataFrame(out)
        frame.index = index  # set, not aligned on: input labels may repeat
        return frame

    def _resolve(self, key: str) -> _Hit:
        if not key:
            return _miss("empty address")
        same = self._by_key.get(key)
        if same is not None:  # the address itself: no parsing needed, nothing beats it
            return self._hit(same, "exact")
        parts = _parse(key)
        admin = parts.admin()
        elsewhere: tuple[str, list[int]] | None = None
        for level, level_key in parts.level_keys():
            candidates = self._index[level].get(level_key)
            if not candidates:
                continue
            kept = [i for i in candidates if not self._conflicts(i, admin)] if admin else candidates
            if kept:
                return self._pick(level, level_key, kept)
            elsewhere = elsewhere or (level_key, candidates)
        return _miss(self._not_found_reason(key, admin, elsewhere))

    def _conflicts(self, entry: int, admin: dict[str, str]) -> bool:
        # Only a *different* name at the same level rules an entry out: a level
        # written on one side and not on the other is just omitted.
        entry_admin = self._admin[entry]
        return any(entry_admin.get(level, name) != name for level, name in admin.items())

    def _pick(self, level: str, level_key: str, ids: list[int]) -> _Hit:
        if len(ids) == 1:
            return self._hit(ids[0], level)
        # Many inputs name the same building or plate: decide each group once.
        memo = (level, level_key, tuple(ids))
        if memo not in self._picks:
            self._picks[memo] = self._pick_among(level, level_key, ids)
        return self._picks[memo]

    def _pick_among(self, level: str, level_key: str, ids: list[int]) -> _Hit:
        # The building (door plate) itself, when the gazetteer has it, beats the
        # centroid of its units (buildings).
        ids = [i for i in ids if self._locators[i] == level_key] or ids
        if len(ids) == 1:
            return self._hit(ids[0], level)
        lon = [self._lon[i] for i in ids]
        lat = [self._lat[i] for i in ids]
        spread = _diameter_m(lon, lat)
        if spread > self.spread_tolerance_m:
            return _miss(
                f"ambiguous: {len(ids)} entries match '{level_key}' ({spread:.0f} m apart)"
            )
        return _Hit(
            sum(lon) / len(lon), sum(lat) / len(lat), level, level_key, None, self._common_code(ids)
        )

    def _hit(self, i: int, level: str) -> _Hit:
        return _Hit(
            self._lon[i],
            self._lat[i],
            level,
            self._raw[i],
            None,
            None if self._codes is None else self._codes[i],
        )

    def _common_code(self, ids: list[int]) -> str | None:
        if self._codes is None:
            return None
        codes = {self._codes[i] for i in ids}
        return codes.pop() if len(codes) == 1 else None

    def _not_found_reason(
        self, key: str, admin: dict[str, str], elsewhere: tuple[str, list[int]] | None
    ) -> str:
        reason = f"no gazetteer entry for '{key}'"
        if elsewhere is None:
            return reason
        level_key, ids = elsewhere
        areas = sorted({self._admin[i][lv] for i in ids for lv in admin if lv in self._admin[i]})
        return f"{reason}; '{level_key}' exists only in {'、'.join(areas)}"

    # -- building --------------------------------------------------------------------
    def _build_index(self) -> None:
        entries = self.entries
        self._raw: list[str] = entries["address"].tolist()
        self._keys: list[str] = entries["key"].tolist()
        self._by_key = {key: i for i, key in enumerate(self._keys)}  # unique after merging
        # Python lists, not arrays: lookups read one or a few entries at a time,
        # where numpy's per-call overhead dominates.
        self._lon: list[float] = entries["lon"].tolist()
        self._lat: list[float] = entries["lat"].tolist()
        self._picks: dict[tuple[str, str, tuple[int, ...]], _Hit] = {}
        self._codes: list[str | None] | None = (
            entries["micro_grid_code"].tolist() if "micro_grid_code" in entries else None
        )
        parts = [_parse(k) for k in self._keys]
        self._admin = [p.admin() for p in parts]
        self._locators = [p.locator for p in parts]
        # One entry is filed under each level it can answer: a unit is also a
        # candidate for its building and for its door plate.
        self._index: dict[str, dict[str, list[int]]] = {level: {} for level in MATCH_LEVELS}
        for i, p in enumerate(parts):
            for level, level_key in p.level_keys():
                self._index[level].setdefault(level_key, []).append(i)


# -- helpers -------------------------------------------------------------------------
def _miss(reason: str) -> _Hit:
    return _Hit(math.nan, math.nan, None, None, reason, None)


def _is_missing(value: object) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float | np.floating) and math.isnan(value)


def _as_series(values: pd.Series | Sequence[str | None], name: str) -> pd.Series:
    if isinstance(values, pd.Series):
        return values
    if isinstance(values, str | bytes):
        raise ValidationError(
            f"{name} must be a sequence of addresses, not one string; wrap it in a list"
        )
    if isinstance(values, pd.DataFrame):
        raise ValidationError(f"{name} must be one column (a Series), not a DataFrame")
    try:
        return pd.Series(list(values), dtype=object)
    except TypeError as exc:
        raise ValidationError(
            f"{name} must be a sequence of strings, got {type(values).__name__}"
        ) from exc


def _check_tolerance(name: str, value: float) -> None:
    if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValidationError(f"{name} must be a finite number of metres >= 0, got {value!r}")


def _validated(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns checked, keys computed, every bad row reported at once."""
    if not isinstance(frame, pd.DataFrame):
        raise ValidationError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in GAZETTEER_COLUMNS if c not in frame.columns]
    if missing:
        raise ValidationError(
            f"gazetteer lacks column(s) {', '.join(missing)}; it has "
            f"{', '.join(map(str, frame.columns)) or 'none'}"
        )
    if frame.empty:
        raise ValidationError("gazetteer is empty: no addresses to match against")
    keep = [*GAZETTEER_COLUMNS] + (["micro_grid_code"] if "micro_grid_code" in frame else [])
    work = frame[keep].copy()
    work.insert(0, "row", frame.index)
    work = work.reset_index(drop=True)
    problems: list[tuple[int, str]] = []  # (position, reason), reported by index label
    work["key"] = _checked_keys(work, problems)
    for axis, limit in (("lon", 180.0), ("lat", 90.0)):
        work[axis] = _checked_coordinate(work, axis, limit, problems)
    if "micro_grid_code" in work:
        work["micro_grid_code"] = [_code_text(c) for c in work["micro_grid_code"]]
    if problems:
        problems.sort(key=lambda p: p[0])  # stable: a row's problems stay in check order
        raise ValidationError(
            "gazetteer refused",
            [{"row": _plain(work["row"].iat[pos]), "reason": reason} for pos, reason in problems],
        )
    return work


def _checked_keys(work: pd.DataFrame, problems: list[tuple[int, str]]) -> np.ndarray:
    codes, normalized, not_text = _normalize_distinct(work["address"], strict=False)
    keys = np.asarray(normalized + [""], dtype=object)[codes]
    is_text = ~np.isin(codes, [codes[pos] for pos, _ in not_text])
    for pos in np.flatnonzero(~is_text | (keys == "")):
        problems.append(
            (
                int(pos),
                "empty address"
                if is_text[pos]
                else f"address is not text: {_plain(work['address'].iat[pos])!r}",
            )
        )
    return keys


def _checked_coordinate(
    work: pd.DataFrame, axis: str, limit: float, problems: list[tuple[int, str]]
) -> pd.Series:
    values = pd.to_numeric(work[axis], errors="coerce").astype(float)
    array = values.to_numpy()
    finite = np.isfinite(array)
    for pos in np.flatnonzero(~finite):
        raw = _plain(work[axis].iat[pos])
        problems.append((int(pos), f"{axis} is not a finite number: {raw!r}"))
    for pos in np.flatnonzero(finite & (np.abs(np.where(finite, array, 0)) > limit)):
        value = array[pos]
        hint = " (lon and lat swapped?)" if axis == "lat" and abs(value) <= 180 else ""
        problems.append((int(pos), f"{axis} {value:g} outside ±{limit:g}{hint}"))
    return values


def _code_text(value: object) -> str | None:
    # Parquet or a spreadsheet may hold codes as numbers; 4.11e17 must read back
    # as its digits, not as "4.11002001001001e+17".
    if _is_missing(value):
        return None
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _plain(value: object) -> object:
    """A numpy scalar as the Python scalar (JSON-friendly, plain repr)."""
    return value.item() if isinstance(value, np.generic) else value


def _merge_duplicates(work: pd.DataFrame, tolerance_m: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep the first of each normalised address; refuse copies far from it."""
    dups = work[work["key"].duplicated(keep=False)]
    if dups.empty:
        return work, work.iloc[:0].assign(duplicate_of=pd.Series(dtype=object))
    grouped = dups.groupby("key", sort=False)
    is_first = grouped.cumcount().to_numpy() == 0
    first_row = grouped["row"].transform("first").to_numpy()
    distance = _distance_m(
        dups["lon"].to_numpy(),
        dups["lat"].to_numpy(),
        grouped["lon"].transform("first").to_numpy(),
        grouped["lat"].transform("first").to_numpy(),
    )
    far = distance > tolerance_m
    if far.any():
        raise ValidationError(
            "gazetteer refused: the same address at different places",
            [
                {
                    "row": _plain(row),
                    "reason": f"'{key}' is {d:.0f} m from row {kept}, more than {tolerance_m:g} m",
                }
                for row, key, d, kept in zip(
                    dups["row"][far], dups["key"][far], distance[far], first_row[far], strict=True
                )
            ],
        )
    dropped = dups[~is_first].assign(duplicate_of=first_row[~is_first])
    return (work.drop(index=dropped.index).reset_index(drop=True), dropped.reset_index(drop=True))


def _distance_m(
    lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray
) -> np.ndarray:
    # Equirectangular: exact to well under a metre at the 100 m scale used here.
    mean_lat = np.radians((lat1 + lat2) / 2)
    dx = np.radians(lon2 - lon1) * np.cos(mean_lat)
    dy = np.radians(lat2 - lat1)
    return np.hypot(dx, dy) * _EARTH_RADIUS_M


def _diameter_m(lon: list[float], lat: list[float]) -> float:
    """Largest distance between two of the points, in metres.

    Plain Python: the groups are small (the units of a building, the buildings
    behind a plate) and numpy's per-call overhead would dominate. Past 200
    points the bounding-box diagonal stands in: an upper bound, so a group is
    never merged wrongly, only possibly called ambiguous.
    """
    if len(lon) > 200:
        return _pair_distance_m(min(lon), min(lat), max(lon), max(lat))
    return max(
        _pair_distance_m(lon[a], lat[a], lon[b], lat[b])
        for a, b in itertools.combinations(range(len(lon)), 2)
    )


def _pair_distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    # Same equirectangular formula as _distance_m, for two points.
    dx = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    return math.hypot(dx, math.radians(lat2 - lat1)) * _EARTH_RADIUS_M
