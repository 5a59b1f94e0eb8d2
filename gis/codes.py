"""Unified area codes: build, parse, validate, parent by prefix, number W→E / N→S.

A code is the concatenation of numeric segments, one per level of the hierarchy
("Unified codes" in ``docs/domain.md``): the 6-digit county-level division of
GB/T 2260, then street, community, grid and micro-grid sequence numbers. The default widths give the
15-digit grid code of DB11/T 2157 (6+3+3+3) and 18 digits for a micro-grid.
Widths are configurable because the standards' full texts are not public and
cities differ (CJ/T 213 uses 2-digit grid numbers).

Because the segments are fixed-width, the level of a code is its length and the
parent of a code is a prefix: no lookup table is needed to walk the hierarchy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import shapely

from gis.errors import InvalidCodeError
from gis.vocabulary import AREA_LEVELS

__all__ = [
    "LEVELS",
    "CodeScheme",
    "ParsedCode",
    "DEFAULT_SCHEME",
    "build",
    "parse",
    "validate",
    "level_of",
    "parent_code",
    "number_children",
    "reading_order",
]

#: The hierarchy, top to bottom.
LEVELS: tuple[str, ...] = AREA_LEVELS


class ParsedCode(NamedTuple):
    """A code split into its segments; segments below ``level`` are ``None``."""

    code: str
    level: str
    district: str
    street: str | None
    community: str | None
    grid: str | None
    micro_grid: str | None


@dataclass(frozen=True)
class CodeScheme:
    """Digit count of each segment.

    Parameters
    ----------
    district, street, community, grid, micro_grid : int
        Digits of each segment. Defaults: 6 + 3 + 3 + 3 (+ 3 for micro-grids).
    """

    district: int = 6
    street: int = 3
    community: int = 3
    grid: int = 3
    micro_grid: int = 3

    def __post_init__(self) -> None:
        for level in LEVELS:
            width = getattr(self, level)
            if not isinstance(width, int) or not 1 <= width <= 12:
                raise InvalidCodeError(
                    f"segment width for {level!r} must be 1–12 digits, got {width!r}"
                )

    # -- shape of codes --------------------------------------------------------------
    def widths(self) -> dict[str, int]:
        """Digits per level, top to bottom."""
        return {level: getattr(self, level) for level in LEVELS}

    def length(self, level: str) -> int:
        """Total digits of a code at ``level``."""
        _check_level(level)
        widths = self.widths()
        return sum(widths[lv] for lv in LEVELS[: LEVELS.index(level) + 1])

    def max_sequence(self, level: str) -> int:
        """Largest sequence number a segment at ``level`` can hold (999 for 3 digits)."""
        _check_level(level)
        return 10 ** getattr(self, level) - 1

    def level_of(self, code: str) -> str:
        """Level of ``code`` read from its length; raises if no level has that length."""
        code = _as_digits(code)
        for level in LEVELS:
            if len(code) == self.length(level):
                return level
        expected = ", ".join(f"{lv} {self.length(lv)}" for lv in LEVELS)
        raise InvalidCodeError(
            f"code {code!r} has {len(code)} digits; a unified code has one of: {expected}"
        )

    # -- build / parse ---------------------------------------------------------------
    def build(
        self,
        district: int | str,
        street: int | str | None = None,
        community: int | str | None = None,
        grid: int | str | None = None,
        micro_grid: int | str | None = None,
    ) -> str:
        """Concatenate segments into a code, zero-padding sequence numbers.

        Segments must be given top-down without holes: a grid needs its street
        and community.
        """
        given = dict(zip(LEVELS, (district, street, community, grid, micro_grid), strict=True))
        parts: list[str] = []
        for level in LEVELS:
            value = given[level]
            if value is None:
                below = [lv for lv in LEVELS[LEVELS.index(level) + 1 :] if given[lv] is not None]
                if below:
                    raise InvalidCodeError(f"{below[0]} segment given without its {level} segment")
                break
            parts.append(self._segment(level, value))
        return "".join(parts)

    def child(self, parent: str, sequence: int) -> str:
        """Code of the ``sequence``-th child of ``parent`` (1-based)."""
        level = self.level_of(parent)
        if level == LEVELS[-1]:
            raise InvalidCodeError(f"{parent!r} is a micro-grid code; micro-grids have no children")
        child_level = LEVELS[LEVELS.index(level) + 1]
        return _as_digits(parent) + self._segment(child_level, sequence)

    def parse(self, code: str) -> ParsedCode:
        """Split a code into segments, validating each one."""
        code = _as_digits(code)
        level = self.level_of(code)
        segments: dict[str, str | None] = dict.fromkeys(LEVELS)
        start = 0
        for lv in LEVELS[: LEVELS.index(level) + 1]:
            width = getattr(self, lv)
            segment = code[start : start + width]
            if lv == "district":
                if segment[:2] == "00" or segment[2:].strip("0") == "" and len(segment) > 2:
                    raise InvalidCodeError(
                        f"district segment {segment!r} of {code!r} is not a county-level "
                        "division code (GB/T 2260: province digits, then a non-zero county part)"
                    )
            elif int(segment) == 0:
                raise InvalidCodeError(
                    f"{lv} segment {segment!r} of {code!r} (digits {start + 1}–{start + width}) "
                    f"must be a sequence number 1–{self.max_sequence(lv)}, not zero"
                )
            segments[lv] = segment
            start += width
        return ParsedCode(code=code, level=level, **segments)  # type: ignore[arg-type]

    def validate(self, code: str, level: str | None = None) -> str:
        """Return ``code`` normalised (stripped) if valid, at ``level`` when given."""
        if level is not None:
            _check_level(level)
            digits = _as_digits(code)
            if len(digits) != self.length(level):
                raise InvalidCodeError(
                    f"code {digits!r} has {len(digits)} digits; a {level} code has "
                    f"{self.length(level)} ({self._describe(level)})"
                )
        parsed = self.parse(code)
        if level is not None:
            _check_level(level)
            if parsed.level != level:
                raise InvalidCodeError(
                    f"code {parsed.code!r} is a {parsed.level} code ({len(parsed.code)} digits); "
                    f"a {level} code has {self.length(level)} digits"
                )
        return parsed.code

    def parent(self, code: str) -> str | None:
        """Parent code by prefix; ``None`` for a district."""
        level = self.parse(code).level
        if level == LEVELS[0]:
            return None
        return _as_digits(code)[: self.length(LEVELS[LEVELS.index(level) - 1])]

    def ancestor(self, code: str, level: str) -> str:
        """Prefix of ``code`` at a higher (or the same) ``level``."""
        own = self.parse(code).level
        _check_level(level)
        if LEVELS.index(level) > LEVELS.index(own):
            raise InvalidCodeError(f"{code!r} is a {own} code; it has no {level} ancestor")
        return _as_digits(code)[: self.length(level)]

    def is_within(self, code: str, ancestor: str) -> bool:
        """True when ``ancestor`` is ``code`` itself or one of its ancestors."""
        return _as_digits(code).startswith(_as_digits(ancestor))

    def _describe(self, level: str) -> str:
        upto = LEVELS[: LEVELS.index(level) + 1]
        return " + ".join(f"{lv} {getattr(self, lv)}" for lv in upto)

    def _segment(self, level: str, value: int | str) -> str:
        width = getattr(self, level)
        text = _as_digits(value) if isinstance(value, str) else str(value)
        if not (text.isascii() and text.isdigit()):
            raise InvalidCodeError(f"{level} segment {value!r} is not a non-negative integer")
        if len(text) > width:
            raise InvalidCodeError(
                f"{level} segment {value!r} does not fit in {width} digits "
                f"(max {self.max_sequence(level)})"
            )
        if level != "district" and int(text) == 0:
            raise InvalidCodeError(f"{level} segment must be 1–{self.max_sequence(level)}, got 0")
        if level == "district" and len(text) != width:
            raise InvalidCodeError(f"district segment {value!r} must have exactly {width} digits")
        return text.zfill(width)

    # -- numbering -------------------------------------------------------------------
    def number_children(
        self, parent: str, geometries: Sequence | np.ndarray, start: int = 1
    ) -> list[str]:
        """Codes for the children of ``parent``, numbered west → east, north → south.

        Parameters
        ----------
        parent : str
            Code of the parent area.
        geometries : sequence of shapely geometries
            The children, in any order; codes come back in the same order.
        start : int
            First sequence number.
        """
        order = reading_order(geometries)
        level = LEVELS[LEVELS.index(self.level_of(parent)) + 1]
        last = start + len(order) - 1
        if last > self.max_sequence(level):
            raise InvalidCodeError(
                f"{parent!r} has {len(order)} {level} children; {getattr(self, level)} digits "
                f"number at most {self.max_sequence(level) - start + 1} from {start}"
            )
        codes: list[str] = [""] * len(order)
        for rank, index in enumerate(order):
            codes[index] = self.child(parent, start + rank)
        return codes


def reading_order(geometries: Sequence | np.ndarray) -> np.ndarray:
    """Indices that sort areas west → east within rows, rows north → south.

    Rows are formed from each area's representative point: walking from the
    northernmost area down, an area starts a new row once it lies more than
    half a typical area height below the first area of the current row. A
    plain sort by (−y, x) would put two side-by-side areas whose centres differ
    by a metre in different "rows"; banding is what planners mean by W→E, N→S.
    """
    geoms = np.asarray(geometries, dtype=object)
    if len(geoms) == 0:
        return np.array([], dtype=np.int64)
    points = shapely.point_on_surface(geoms)
    x, y = shapely.get_x(points), shapely.get_y(points)
    bounds = shapely.bounds(geoms)
    band = 0.5 * float(np.median(bounds[:, 3] - bounds[:, 1]))
    by_north = np.lexsort((x, -y))
    row = np.empty(len(geoms), dtype=np.int64)
    current, row_top = 0, y[by_north[0]]
    for i in by_north:
        if row_top - y[i] > band:
            current, row_top = current + 1, y[i]
        row[i] = current
    return np.lexsort((x, row))


def _as_digits(value: str | int) -> str:
    text = str(value).strip()
    # ASCII only: str.isdigit() also accepts '²' or Arabic-Indic digits, which int() refuses.
    if not (text.isascii() and text.isdigit()):
        raise InvalidCodeError(f"code {value!r} must contain digits only (0-9)")
    return text


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise InvalidCodeError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")


DEFAULT_SCHEME = CodeScheme()


def build(
    district: int | str, *segments: int | str | None, scheme: CodeScheme = DEFAULT_SCHEME
) -> str:
    """Module-level :meth:`CodeScheme.build` with the default scheme."""
    return scheme.build(district, *segments)


def parse(code: str, scheme: CodeScheme = DEFAULT_SCHEME) -> ParsedCode:
    """Module-level :meth:`CodeScheme.parse` with the default scheme."""
    return scheme.parse(code)


def validate(code: str, level: str | None = None, scheme: CodeScheme = DEFAULT_SCHEME) -> str:
    """Module-level :meth:`CodeScheme.validate` with the default scheme."""
    return scheme.validate(code, level)


def level_of(code: str, scheme: CodeScheme = DEFAULT_SCHEME) -> str:
    """Module-level :meth:`CodeScheme.level_of` with the default scheme."""
    return scheme.level_of(code)


def parent_code(code: str, scheme: CodeScheme = DEFAULT_SCHEME) -> str | None:
    """Module-level :meth:`CodeScheme.parent` with the default scheme."""
    return scheme.parent(code)


def number_children(
    parent: str, geometries: Iterable, start: int = 1, scheme: CodeScheme = DEFAULT_SCHEME
) -> list[str]:
    """Module-level :meth:`CodeScheme.number_children` with the default scheme."""
    return scheme.number_children(parent, list(geometries), start)
