"""Convert longitude/latitude between WGS84, CGCS2000, GCJ-02 and BD-09.

These are the four geographic systems met in China (see "Coordinate systems" in
``docs/domain.md``):

* **WGS84** (EPSG:4326): GPS, and ``wx.getLocation`` by default.
* **CGCS2000** (EPSG:4490): official survey data. Both CGCS2000 and WGS84 are
  realisations of the ITRS and differ by a few centimetres. That is far below
  GPS accuracy and below what GCJ-02 itself keeps, so the two are treated as
  the same system here. PROJ does the same: its EPSG:4490 → EPSG:4326
  transformation is a null "ballpark" one.
* **GCJ-02** (Amap/Gaode, Tencent, WeChat maps): the state-mandated obfuscation.
  A published (leaked) formula gives an offset in metres from a low-order
  polynomial plus sinusoids in ``x = lon - 105``, ``y = lat - 35``. The offset is
  turned into degrees on the Krasovsky 1940 ellipsoid and added to WGS84. It is
  100–700 m and changes slowly from place to place. Providers apply it only
  inside China.
* **BD-09** (Baidu): GCJ-02, then a tiny scaling and rotation about (0°, 0°)
  that depends on the point, then a fixed shift of (0.0065°, 0.006°).

The forward directions (WGS84 → GCJ-02 → BD-09) have closed forms. The inverses
do not. The usual "one-step" inverses subtract the offset taken at the wrong
point and miss by up to 5 m (GCJ-02) and 20 cm (BD-09). Here each inverse
solves ``f(w) = g`` by fixed-point iteration, ``w ← w - (f(w) - g)``. GCJ-02
starts from ``w = g``. BD-09 starts from the closed-form approximate inverse.
The iteration converges because ``f`` is the identity plus an offset that
barely changes with position. Over China the Jacobian of that offset has an
∞-norm of at most q = 0.007 (GCJ-02) or 0.022 (BD-09), so each step divides
the error by at least 45. The iteration works on a whole block of points at
once. By the contraction mapping theorem, the error left after a step that
moved no point by more than c is at most q/(1-q)·c. The iteration stops as
soon as that bound is below 2e-9° (about 0.2 mm). GCJ-02 → WGS84 then takes 3
evaluations of the forward formula (rarely 4) and leaves an error of at most
0.2 mm, typically 0.05 mm. BD-09 → GCJ-02 takes 2 iterations and leaves about
10 µm.

Points outside China are returned unchanged, because that is what the map
providers do. "Inside" means inside the coarse outline in
:mod:`gis.crs.china_outline`, not inside the usual rectangle, which would wrongly
take in Seoul, Hanoi, much of Mongolia and Taiwan. HK and Macau are inside and
Taiwan is outside. The outline is accurate to 10–30 km along land borders, so
callers whose data straddle a border should pass ``china_only=False``, which
converts every point.

Conventions for every conversion:

* ``lon`` and ``lat`` are in degrees, scalars or array-likes that broadcast
  together. The inputs are never modified.
* The result is a ``(lon, lat)`` pair of new float64 arrays with the broadcast
  shape. If both inputs are scalars, the pair holds NumPy float64 scalars, which
  are Python floats.
* A point with NaN in either coordinate comes out as NaN in both, with no
  warning.
* Each block of points stops iterating on its own, so an inverse can give the
  same point answers that differ by less than 0.2 mm from batch to batch.
* With ``china_only=False`` points anywhere are converted. The GCJ-02 formula
  only makes sense near China, and within about 0.5° of a pole its inverse
  no longer converges.

Speed: the work runs in blocks of a few thousand points so that the temporaries
stay in the CPU cache. The ten sinusoids of the GCJ-02 formula come from one
complex phasor per axis, raised to whole powers, instead of ten ``sin`` calls.
Run ``python benchmarks/bench_crs.py`` for figures.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Final, NamedTuple

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

from gis.crs.china_outline import CHINA_OUTLINE
from gis.errors import CRSError

#: Canonical names of the supported systems, as returned by `normalize_crs_name`.
CRS_NAMES: Final = ("wgs84", "cgcs2000", "gcj02", "bd09")

FloatArray = NDArray[np.float64]
#: What a conversion returns: arrays, or float64 scalars for scalar input.
LonLat = tuple[FloatArray | np.float64, FloatArray | np.float64]

# Names are compared after lower-casing and dropping "-", "_", ":", " " and ".",
# so "EPSG:4326", "epsg_4326" and "WGS-84" all match.
_ALIASES: Final[dict[str, str]] = {
    "wgs84": "wgs84",
    "wgs1984": "wgs84",
    "wgs84ll": "wgs84",
    "epsg4326": "wgs84",
    "4326": "wgs84",
    "crs84": "wgs84",
    "ogccrs84": "wgs84",
    "ogc13crs84": "wgs84",
    "cgcs2000": "cgcs2000",
    "epsg4490": "cgcs2000",
    "4490": "cgcs2000",
    "gcj02": "gcj02",
    "gcj02ll": "gcj02",
    "bd09": "bd09",
    "bd09ll": "bd09",
}
_ALLOWED_TEXT: Final = (
    "wgs84 (EPSG:4326), cgcs2000 (EPSG:4490), gcj02 (GCJ-02) or bd09 (BD-09, bd09ll)"
)

# GCJ-02 constants from the published formula: Krasovsky 1940 ellipsoid.
_KRASOVSKY_A: Final = 6378245.0
_KRASOVSKY_EE: Final = 0.00669342162296594323
# Metres of offset → degrees: 180 / (π a (1 - e²)) for latitude, 180 / (π a) for longitude.
_M_TO_DEG_LAT: Final = 180.0 / (np.pi * _KRASOVSKY_A * (1.0 - _KRASOVSKY_EE))
_M_TO_DEG_LON: Final = 180.0 / (np.pi * _KRASOVSKY_A)
_SIN35: Final = float(np.sin(np.radians(35.0)))
_COS35: Final = float(np.cos(np.radians(35.0)))

# BD-09 constants: amplitudes and the shift of Baidu's formula.
_BD_SCALE: Final = 2e-5
_BD_ANGLE: Final = 3e-6
_BD_DLON: Final = 0.0065
_BD_DLAT: Final = 0.006
# Baidu takes sin(lat·x_pi) and cos(lon·x_pi) with x_pi = π·3000/180, i.e.
# 25/3 turns per degree. Removing whole turns before calling libm keeps its
# argument below π; for large arguments libm is several times slower.
_BD_TURNS_PER_DEG: Final = 3000.0 / 360.0

# Fixed-point inverses (see `_solve_inplace`): bounds q on the ∞-norm of the
# Jacobian of each offset over China. The maxima over a 0.01° grid are 0.0067
# (GCJ-02) and 0.0214 (BD-09). The fastest term has a period of 1/3°, so that
# grid is fine enough for these to be within 1 % of the true maxima; they are
# rounded up here.
_GCJ02_LIPSCHITZ: Final = 0.007
_BD09_LIPSCHITZ: Final = 0.022
# Stop once the bound on the remaining error is below this (≈ 0.2 mm).
_TOL_DEG: Final = 2e-9
# Inside China 2–4 steps are enough. Near the poles (china_only=False) GCJ-02
# stops being a contraction, and this cap ends the loop.
_MAX_ITER: Final = 10

# Points per block: small enough for the temporaries of one GCJ-02 evaluation
# (some complex) to stay in L2 cache, large enough to amortise NumPy's call overhead.
_BLOCK: Final = 4096

# Cell size of the coarse raster that answers `in_china` for most points.
_CELL_DEG: Final = 0.25

Kernel = Callable[[FloatArray, FloatArray], None]


def normalize_crs_name(name: str | int) -> str:
    """Return the canonical name of a coordinate system.

    Parameters
    ----------
    name : str or int
        A name or alias, case-insensitive: ``"WGS84"``, ``"EPSG:4326"``,
        ``"4326"`` or ``4326``, ``"CGCS2000"``, ``"EPSG:4490"``, ``"GCJ-02"``,
        ``"gcj02"``, ``"BD-09"``, ``"bd09ll"``, and the like.

    Returns
    -------
    str
        One of `CRS_NAMES`: ``"wgs84"``, ``"cgcs2000"``, ``"gcj02"``, ``"bd09"``.

    Raises
    ------
    CRSError
        If `name` is not a string or an integer, or names no supported system.

    Examples
    --------
    >>> normalize_crs_name("EPSG:4326"), normalize_crs_name("BD-09")
    ('wgs84', 'bd09')
    """
    return _normalize(name, "name")


def in_china(lon: ArrayLike, lat: ArrayLike) -> NDArray[np.bool_] | np.bool_:
    """Tell which points lie inside the coarse outline of China.

    The outline (:mod:`gis.crs.china_outline`) takes in mainland China, Hainan,
    Hong Kong and Macau, and leaves out Taiwan and the neighbouring countries.
    It is accurate to 10–30 km along land borders.

    Parameters
    ----------
    lon, lat : array_like of float
        Degrees, broadcast together. The outline is in WGS84. The conversions
        test their input coordinates, whatever the system, because the GCJ-02
        and BD-09 offsets (< 1.5 km) are below the outline's accuracy.

    Returns
    -------
    numpy.ndarray of bool or numpy.bool_
        True inside the outline. NaN is never inside. A NumPy bool is returned
        when both inputs are scalars.

    Raises
    ------
    CRSError
        If the inputs are not numeric or do not broadcast together.

    Examples
    --------
    >>> in_china([116.40, 126.98, 121.56], [39.90, 37.57, 25.03])  # Beijing, Seoul, Taipei
    array([ True, False, False])
    """
    x, y, shape = _prepare(lon, lat)
    inside = np.empty(x.size, dtype=bool)
    for start in range(0, x.size, _BLOCK):
        block = slice(start, start + _BLOCK)
        inside[block] = _china_mask()(x[block], y[block])
    inside = inside.reshape(shape)
    return inside[()] if shape == () else inside


def convert(
    lon: ArrayLike, lat: ArrayLike, src: str | int, dst: str | int, *, china_only: bool = True
) -> LonLat:
    """Convert coordinates from any supported system to any other.

    Parameters
    ----------
    lon, lat : array_like of float
        Degrees in `src`, broadcast together.
    src, dst : str or int
        Source and target systems, any name accepted by `normalize_crs_name`.
    china_only : bool, default True
        If True, only points inside China are shifted (see `in_china`) and the
        rest are returned unchanged, as the map providers do. If False, every
        point is shifted.

    Returns
    -------
    lon, lat : numpy.ndarray or numpy.float64
        Degrees in `dst`: new float64 arrays of the broadcast shape, or scalars
        if both inputs are scalars. A point with a NaN coordinate gives NaN in
        both.

    Raises
    ------
    CRSError
        If `src` or `dst` is unknown, or the coordinates are not numeric or do
        not broadcast together.

    Examples
    --------
    >>> lon, lat = convert(116.42079, 39.90105, "EPSG:4326", "BD-09")
    >>> f"{lon:.5f}, {lat:.5f}"
    '116.43350, 39.90850'
    """
    src_name = _normalize(src, "src")
    dst_name = _normalize(dst, "dst")
    return _apply(lon, lat, _KERNELS[(_datum(src_name), _datum(dst_name))], china_only)


def to_wgs84(lon: ArrayLike, lat: ArrayLike, crs: str | int, *, china_only: bool = True) -> LonLat:
    """Convert coordinates in `crs` to WGS84.

    Same as ``convert(lon, lat, crs, "wgs84", china_only=china_only)``; see `convert`.

    Parameters
    ----------
    lon, lat : array_like of float
        Degrees in `crs`, broadcast together.
    crs : str or int
        Source system, any name accepted by `normalize_crs_name`.
    china_only : bool, default True
        Shift only points inside China (see `in_china`).

    Returns
    -------
    lon, lat : numpy.ndarray or numpy.float64
        WGS84 degrees.

    Raises
    ------
    CRSError
        If `crs` is unknown or the coordinates are invalid.
    """
    crs_name = _normalize(crs, "crs")
    return _apply(lon, lat, _KERNELS[(_datum(crs_name), "wgs84")], china_only)


def from_wgs84(
    lon: ArrayLike, lat: ArrayLike, crs: str | int, *, china_only: bool = True
) -> LonLat:
    """Convert WGS84 coordinates to `crs`.

    Same as ``convert(lon, lat, "wgs84", crs, china_only=china_only)``; see `convert`.

    Parameters
    ----------
    lon, lat : array_like of float
        WGS84 degrees, broadcast together.
    crs : str or int
        Target system, any name accepted by `normalize_crs_name`.
    china_only : bool, default True
        Shift only points inside China (see `in_china`).

    Returns
    -------
    lon, lat : numpy.ndarray or numpy.float64
        Degrees in `crs`.

    Raises
    ------
    CRSError
        If `crs` is unknown or the coordinates are invalid.
    """
    crs_name = _normalize(crs, "crs")
    return _apply(lon, lat, _KERNELS[("wgs84", _datum(crs_name))], china_only)


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike, *, china_only: bool = True) -> LonLat:
    """Convert WGS84 to GCJ-02 (closed form).

    Parameters, shapes, NaN and errors as for `convert`; ``china_only`` shifts
    only points inside China (see `in_china`).
    """
    return _apply(lon, lat, _wgs84_to_gcj02_block, china_only)


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike, *, china_only: bool = True) -> LonLat:
    """Convert GCJ-02 to WGS84 by fixed-point iteration.

    Put back through `wgs84_to_gcj02`, the result reproduces the input to
    within 0.2 mm. See the module docstring for the iteration.

    Parameters, shapes, NaN and errors as for `convert`; ``china_only`` shifts
    only points inside China (see `in_china`).
    """
    return _apply(lon, lat, _gcj02_to_wgs84_block, china_only)


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike, *, china_only: bool = True) -> LonLat:
    """Convert GCJ-02 to BD-09 (closed form).

    Parameters, shapes, NaN and errors as for `convert`; ``china_only`` shifts
    only points inside China (see `in_china`).
    """
    return _apply(lon, lat, _gcj02_to_bd09_block, china_only)


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike, *, china_only: bool = True) -> LonLat:
    """Convert BD-09 to GCJ-02 by fixed-point iteration.

    The usual closed-form inverse misses by up to 20 cm. It is used here only
    as the starting point.

    Parameters, shapes, NaN and errors as for `convert`; ``china_only`` shifts
    only points inside China (see `in_china`).
    """
    return _apply(lon, lat, _bd09_to_gcj02_block, china_only)


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike, *, china_only: bool = True) -> LonLat:
    """Convert WGS84 to BD-09 (through GCJ-02).

    Parameters, shapes, NaN and errors as for `convert`; ``china_only`` shifts
    only points inside China (see `in_china`).
    """
    return _apply(lon, lat, _wgs84_to_bd09_block, china_only)


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike, *, china_only: bool = True) -> LonLat:
    """Convert BD-09 to WGS84 (through GCJ-02, both steps iterated).

    Parameters, shapes, NaN and errors as for `convert`; ``china_only`` shifts
    only points inside China (see `in_china`).
    """
    return _apply(lon, lat, _bd09_to_wgs84_block, china_only)


# --- validation ----------------------------------------------------------------------


def _normalize(name: object, argument: str) -> str:
    """Canonical name for `name`; the error message names `argument`."""
    if isinstance(name, bool) or not isinstance(name, str | int | np.integer):
        raise CRSError(
            f"{argument} must be a CRS name (str) or EPSG code (int), got "
            f"{type(name).__name__}; allowed: {_ALLOWED_TEXT}"
        )
    key = str(name).strip().lower()
    for char in "-_: .":
        key = key.replace(char, "")
    if key in _ALIASES:
        return _ALIASES[key]
    hint = ""
    if key.startswith("bd09mc"):
        hint = " (bd09mc is Baidu's projected Mercator system, not supported)"
    raise CRSError(f"unknown {argument} {name!r}{hint}; allowed: {_ALLOWED_TEXT}")


def _check_flag(china_only: object) -> None:
    # A string such as "false" would be truthy, so accept real booleans only.
    if not isinstance(china_only, bool | np.bool_):
        raise CRSError(f"china_only must be True or False, got {china_only!r}")


def _datum(name: str) -> str:
    # CGCS2000 and WGS84 differ by centimetres: treated as one system (see module doc).
    return "wgs84" if name == "cgcs2000" else name


def _prepare(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray, tuple[int, ...]]:
    """Flat, writable float64 copies of `lon` and `lat` and their broadcast shape."""
    try:
        x = np.asarray(lon, dtype=np.float64)
        y = np.asarray(lat, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CRSError(f"lon and lat must be numbers or arrays of numbers: {exc}") from None
    try:
        shape = np.broadcast_shapes(x.shape, y.shape)
    except ValueError:
        raise CRSError(
            f"lon and lat must have broadcastable shapes, got {x.shape} and {y.shape}"
        ) from None
    # Copies, because the kernels work in place and inputs must stay untouched.
    x = np.array(np.broadcast_to(x, shape), dtype=np.float64, order="C", copy=True)
    y = np.array(np.broadcast_to(y, shape), dtype=np.float64, order="C", copy=True)
    return x.reshape(-1), y.reshape(-1), shape


# --- driver --------------------------------------------------------------------------


def _apply(lon: ArrayLike, lat: ArrayLike, kernel: Kernel, china_only: bool) -> LonLat:
    """Run `kernel` in place over blocks of the prepared coordinates."""
    _check_flag(china_only)
    x, y, shape = _prepare(lon, lat)
    # Identity conversions shift nothing, so they skip the (cheap) China test.
    mask = _china_mask() if china_only and kernel is not _identity_block else None
    # Outside China, or for NaN with china_only=False, the formulas may produce
    # NaN or inf; those are meaningful results, not errors worth a warning.
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        for start in range(0, x.size, _BLOCK):
            _run_block(kernel, x[start : start + _BLOCK], y[start : start + _BLOCK], mask)
    if shape == ():
        return x[0], y[0]
    return x.reshape(shape), y.reshape(shape)


def _run_block(kernel: Kernel, x: FloatArray, y: FloatArray, mask: _ChinaMask | None) -> None:
    """Apply `kernel` to the block views `x`, `y`, or only to their points in China."""
    if mask is None or (inside := mask(x, y)).all():
        kernel(x, y)
    else:
        # Gather the points to shift, convert them, scatter them back.
        idx = np.flatnonzero(inside)
        if idx.size:
            sub_x, sub_y = x[idx], y[idx]
            kernel(sub_x, sub_y)
            x[idx] = sub_x
            y[idx] = sub_y
    # A point missing either coordinate is missing: NaN in both, whatever the kernel did.
    missing = np.isnan(x)
    missing |= np.isnan(y)
    if missing.any():
        x[missing] = np.nan
        y[missing] = np.nan


# --- GCJ-02 --------------------------------------------------------------------------


def _gcj02_offset(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """GCJ-02 minus WGS84, in degrees, at WGS84 points (the published formula).

    The formula has sines of πx/30, πx/12, πx/3, πx, 2πx, 6πx (x = lon - 105)
    and of πy/30, πy/12, πy/3, πy (y = lat - 35), plus sin/cos of the latitude.
    All are whole multiples of one base angle per axis, πx/60 and πy/60, so they
    are the imaginary parts of powers of ``z = exp(iθ)``: z², z⁵, z²⁰, z⁶⁰, z¹²⁰,
    z³⁶⁰. A complex multiply costs NumPy no more than a real one, so ten of them
    replace twelve calls to libm sin, which are slow. The result agrees with
    the direct formula to about 1e-15°.
    """
    x = lon - 105.0
    y = lat - 35.0
    # Row 0: exp(iπx/60). Row 1: exp(iπy/60) = exp(iα)³, with α = latitude - 35°
    # in radians; exp(iα) also gives sin/cos of the latitude below.
    z = np.empty((2, x.size), dtype=np.complex128)
    z[0] = _unit_phasor(x * (np.pi / 60.0))
    za = _unit_phasor(y * (np.pi / 180.0))
    np.multiply(za * za, za, out=z[1])
    z2 = z * z
    z5 = z2 * z2
    z5 *= z
    z20 = z5 * z5
    z20 *= z20
    z60 = z20 * z20
    z60 *= z20
    zx120 = z60[0] * z60[0]
    zx360 = zx120 * zx120
    zx360 *= zx120
    zx360 += zx120
    shared = (40.0 / 3.0) * zx360.imag  # sin 6πx and sin 2πx enter both offsets
    wave = (40.0 / 3.0) * z60
    wave += (80.0 / 3.0) * z20
    wave[0] += 100.0 * z5[0]
    wave[0] += 200.0 * z2[0]
    wave[1] += (320.0 / 3.0) * z5[1]
    wave[1] += (640.0 / 3.0) * z2[1]

    root = 0.1 * np.sqrt(np.abs(x))
    xy = 0.1 * x * y
    metres_lon = 300.0 + x * (1.0 + 0.1 * x) + 2.0 * y + xy + root + shared + wave[0].imag
    metres_lat = -100.0 + 2.0 * x + y * (3.0 + 0.2 * y) + xy + 2.0 * root + shared + wave[1].imag

    # Radii of curvature on Krasovsky; sin/cos of the latitude by rotating α by 35°.
    sin_lat = za.imag * _COS35 + za.real * _SIN35
    cos_lat = za.real * _COS35 - za.imag * _SIN35
    w2 = 1.0 - _KRASOVSKY_EE * sin_lat * sin_lat
    w = np.sqrt(w2)
    return metres_lon * (_M_TO_DEG_LON * w / cos_lat), metres_lat * (_M_TO_DEG_LAT * w2 * w)


def _unit_phasor(angle: FloatArray) -> NDArray[np.complex128]:
    """exp(i·angle), from one cos and one sin (NumPy's complex exp is slower)."""
    out = np.empty(angle.shape, dtype=np.complex128)
    # Computing contiguous results and copying them beats ``out=`` into the
    # strided real/imag views.
    out.real = np.cos(angle)
    out.imag = np.sin(angle)
    return out


def _wgs84_to_gcj02_block(x: FloatArray, y: FloatArray) -> None:
    dx, dy = _gcj02_offset(x, y)
    x += dx
    y += dy


def _gcj02_to_wgs84_block(x: FloatArray, y: FloatArray) -> None:
    _solve_inplace(x, y, _gcj02_forward, _GCJ02_LIPSCHITZ)


def _gcj02_forward(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    dx, dy = _gcj02_offset(x, y)
    dx += x
    dy += y
    return dx, dy


# --- BD-09 ---------------------------------------------------------------------------


def _bd09_warp(x: FloatArray, y: FloatArray, sign: float) -> tuple[FloatArray, FloatArray]:
    """Baidu's scaling and rotation of (x, y) about the origin, without the shift.

    With ``sign=+1`` this is the forward formula ``z = hypot + 2e-5 sin(y x_pi)``,
    ``θ = atan2 + 3e-6 cos(x x_pi)``, ``(z cos θ, z sin θ)``. With ``sign=-1`` it
    is the usual approximate inverse. Because the rotation δ is at most 3e-6 rad,
    rotating by δ with ``cos δ = 1 - δ²/2`` and ``sin δ = δ`` is exact in float64.
    That avoids hypot, atan2, sin θ and cos θ.
    """
    r = x * x
    r += y * y
    np.sqrt(r, out=r)
    np.maximum(r, np.finfo(np.float64).tiny, out=r)  # (0, 0) maps to itself, not NaN
    scale = _sin_turns(y * _BD_TURNS_PER_DEG)
    scale *= sign * _BD_SCALE
    scale /= r
    scale += 1.0  # z / r
    sin_delta = _cos_turns(x * _BD_TURNS_PER_DEG)
    sin_delta *= sign * _BD_ANGLE
    cos_delta = sin_delta * sin_delta
    cos_delta *= -0.5
    cos_delta += 1.0
    cos_delta *= scale
    sin_delta *= scale
    out_x = cos_delta * x
    out_x -= sin_delta * y
    out_y = cos_delta * y
    out_y += sin_delta * x
    return out_x, out_y


def _sin_turns(turns: FloatArray) -> FloatArray:
    """sin(2π·turns), overwriting `turns`; whole turns go first to keep libm fast."""
    turns -= np.rint(turns)
    turns *= 2.0 * np.pi
    return np.sin(turns, out=turns)


def _cos_turns(turns: FloatArray) -> FloatArray:
    """cos(2π·turns), overwriting `turns`; whole turns go first to keep libm fast."""
    turns -= np.rint(turns)
    turns *= 2.0 * np.pi
    return np.cos(turns, out=turns)


def _gcj02_to_bd09_block(x: FloatArray, y: FloatArray) -> None:
    bx, by = _bd09_warp(x, y, 1.0)
    np.add(bx, _BD_DLON, out=x)
    np.add(by, _BD_DLAT, out=y)


def _bd09_to_gcj02_block(x: FloatArray, y: FloatArray) -> None:
    x -= _BD_DLON
    y -= _BD_DLAT
    # Start from the usual closed-form inverse (≤ 20 cm off) to save iterations.
    _solve_inplace(x, y, _bd09_unshifted_forward, _BD09_LIPSCHITZ, start=_bd09_warp(x, y, -1.0))


def _bd09_unshifted_forward(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    return _bd09_warp(x, y, 1.0)


def _wgs84_to_bd09_block(x: FloatArray, y: FloatArray) -> None:
    _wgs84_to_gcj02_block(x, y)
    _gcj02_to_bd09_block(x, y)


def _bd09_to_wgs84_block(x: FloatArray, y: FloatArray) -> None:
    _bd09_to_gcj02_block(x, y)
    _gcj02_to_wgs84_block(x, y)


def _identity_block(x: FloatArray, y: FloatArray) -> None:
    return None


# --- fixed-point inverse -------------------------------------------------------------


def _solve_inplace(
    x: FloatArray,
    y: FloatArray,
    forward: Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]],
    lipschitz: float,
    start: tuple[FloatArray, FloatArray] | None = None,
) -> None:
    """Overwrite (x, y) with w such that forward(w) = (x, y), by fixed-point iteration.

    Each step is ``w ← w - (forward(w) - target)``: Newton's method with the
    Jacobian of `forward` replaced by the identity, which works because
    `forward` is the identity plus an offset whose own Jacobian has norm
    q ≤ `lipschitz` (< 1). By the contraction mapping theorem, the error left
    after a step that moved the points by at most c is at most q/(1-q)·c. The
    loop stops as soon as that bound is below `_TOL_DEG`. Should a block
    contract more slowly than `lipschitz` (far outside China), the observed
    ratio of successive steps is used for q instead.
    """
    target_x, target_y = x.copy(), y.copy()
    if start is not None:
        x[...], y[...] = start
    previous = np.inf
    for _ in range(_MAX_ITER):
        fx, fy = forward(x, y)
        fx -= target_x  # residual = correction to subtract
        fy -= target_y
        x -= fx
        y -= fy
        step = _max_abs(fx, fy)
        q = max(lipschitz, step / previous)
        if not step > 0.0 or (q < 1.0 and step * q / (1.0 - q) <= _TOL_DEG):
            break  # converged, or an all-NaN block
        previous = step


def _max_abs(a: FloatArray, b: FloatArray) -> float:
    # fmax skips NaN, so one NaN point does not keep the whole block iterating.
    return float(np.fmax(np.fmax.reduce(np.abs(a)), np.fmax.reduce(np.abs(b))))


_KERNELS: Final[dict[tuple[str, str], Kernel]] = {
    ("wgs84", "wgs84"): _identity_block,
    ("gcj02", "gcj02"): _identity_block,
    ("bd09", "bd09"): _identity_block,
    ("wgs84", "gcj02"): _wgs84_to_gcj02_block,
    ("gcj02", "wgs84"): _gcj02_to_wgs84_block,
    ("gcj02", "bd09"): _gcj02_to_bd09_block,
    ("bd09", "gcj02"): _bd09_to_gcj02_block,
    ("wgs84", "bd09"): _wgs84_to_bd09_block,
    ("bd09", "wgs84"): _bd09_to_wgs84_block,
}


# --- in China ------------------------------------------------------------------------


class _Grid(NamedTuple):
    lon0: float
    lat0: float
    lon1: float
    lat1: float
    n_lon: int
    codes: NDArray[np.uint8]  # flat, row-major by latitude: 0 out, 1 in, 2 boundary


class _ChinaMask:
    """Vectorised point-in-outline test: bounding box, then a raster, then shapely.

    A 0.25° raster records for each cell whether it is wholly outside, wholly
    inside or crossed by the outline. Only points in crossed cells (about 3 % of
    points spread over China) go to ``shapely.contains_xy``, which costs
    ~0.2 µs per point, ten times the rest of this test.
    """

    def __init__(self, outline: tuple[tuple[float, float], ...], cell: float) -> None:
        self.polygon = shapely.Polygon(outline)
        shapely.prepare(self.polygon)
        self.cell = cell
        self.grid = self._rasterise(cell)

    def _rasterise(self, cell: float) -> _Grid:
        lon0, lat0, lon1, lat1 = self.polygon.bounds
        # floor + 1 so that a point exactly on the east/north bound has a cell.
        n_lon = int(np.floor((lon1 - lon0) / cell)) + 1
        n_lat = int(np.floor((lat1 - lat0) / cell)) + 1
        west, south = np.meshgrid(lon0 + cell * np.arange(n_lon), lat0 + cell * np.arange(n_lat))
        west, south = west.ravel(), south.ravel()
        boundary = self.polygon.boundary
        shapely.prepare(boundary)
        crossed = shapely.intersects(boundary, shapely.box(west, south, west + cell, south + cell))
        centre_in = shapely.contains_xy(self.polygon, west + cell / 2, south + cell / 2)
        codes = np.where(crossed, 2, centre_in.astype(np.uint8)).astype(np.uint8)
        return _Grid(lon0, lat0, lon1, lat1, n_lon, codes)

    def __call__(self, x: FloatArray, y: FloatArray) -> NDArray[np.bool_]:
        g = self.grid
        # NaN fails every comparison, so NaN is never inside.
        candidate = (x >= g.lon0) & (x <= g.lon1) & (y >= g.lat0) & (y <= g.lat1)
        if not candidate.all():
            inside = np.zeros(x.shape, dtype=bool)
            idx = np.flatnonzero(candidate)
            if idx.size:
                inside[idx] = self._classify(x[idx], y[idx])
            return inside
        return self._classify(x, y)

    def _classify(self, x: FloatArray, y: FloatArray) -> NDArray[np.bool_]:
        """Inside test for points already known to be within the bounding box."""
        g = self.grid
        inv = 1.0 / self.cell
        cell = ((y - g.lat0) * inv).astype(np.intp) * g.n_lon
        cell += ((x - g.lon0) * inv).astype(np.intp)
        code = g.codes[cell]
        inside = code == 1
        crossed = np.flatnonzero(code == 2)
        if crossed.size:
            inside[crossed] = shapely.contains_xy(self.polygon, x[crossed], y[crossed])
        return inside


@functools.cache
def _china_mask() -> _ChinaMask:
    # Built on first use (~60 ms), not at import.
    return _ChinaMask(CHINA_OUTLINE, _CELL_DEG)
