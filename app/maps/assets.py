"""JS and CSS of the map pages from pinned, locally installed packages — never from a CDN.

folium declares the files a page needs as ``(name, url)`` pairs on the classes it
renders (``Map.default_js``, ``default_css`` of each plugin), all pointing at CDNs.
:func:`localize` walks a built map and replaces them on the *instances* (no global
side effect, other maps in the process keep folium's defaults) with either

- URLs under a prefix the app serves (``/static/vendor/leaflet@1.9.4/dist/leaflet.js``):
  the package version is part of the path, so browsers may cache them for good; or
- the files' contents, inlined, for a standalone HTML file (``gridmap map -o``); CSS
  references (images, fonts) become data URIs.

The npm packages come from ``package.json`` / ``package-lock.json`` at the repository
root, installed by ``scripts/install_assets.sh`` into ``var/assets/node_modules``;
Leaflet.heat is the copy folium itself ships (patched for weights). An asset folium
asks for that :data:`ASSETS` does not know is an error (:class:`AssetError`), never a
silent CDN link; :func:`finish` checks the rendered page once more.
"""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from branca.element import Element

from gis.errors import GridmapError

__all__ = [
    "ASSETS",
    "DROPPED",
    "Asset",
    "AssetError",
    "AssetStore",
    "finish",
    "localize",
    "INSTALL_HINT",
]

INSTALL_HINT = "run ./scripts/install_assets.sh (npm ci of package-lock.json into var/assets)"


class AssetError(GridmapError):
    """A front-end file the page needs is not installed or not known."""


@dataclass(frozen=True)
class Asset:
    """One JS or CSS file: the package it comes from and its path inside the package."""

    package: str
    path: str


#: folium's asset names (and our own) → the local file.
ASSETS: dict[str, Asset] = {
    # folium.Map
    "leaflet": Asset("leaflet", "dist/leaflet.js"),
    "leaflet_css": Asset("leaflet", "dist/leaflet.css"),
    "jquery": Asset("jquery", "dist/jquery.min.js"),
    "bootstrap": Asset("bootstrap", "dist/js/bootstrap.bundle.min.js"),
    "bootstrap_css": Asset("bootstrap", "dist/css/bootstrap.min.css"),
    "awesome_markers": Asset("leaflet.awesome-markers", "dist/leaflet.awesome-markers.min.js"),
    "awesome_markers_css": Asset("leaflet.awesome-markers", "dist/leaflet.awesome-markers.css"),
    "awesome_markers_font_css": Asset("@fortawesome/fontawesome-free", "css/all.min.css"),
    # folium.plugins.MarkerCluster / FastMarkerCluster
    "markerclusterjs": Asset("leaflet.markercluster", "dist/leaflet.markercluster.js"),
    "markerclustercss": Asset("leaflet.markercluster", "dist/MarkerCluster.css"),
    "markerclusterdefaultcss": Asset("leaflet.markercluster", "dist/MarkerCluster.Default.css"),
    # folium.plugins.HeatMap: folium's own patched Leaflet.heat
    "leaflet-heat.js": Asset("folium", "templates/leaflet_heat.min.js"),
    # folium.plugins.Search
    "Leaflet.Search.js": Asset("leaflet-search", "dist/leaflet-search.min.js"),
    "Leaflet.Search.css": Asset("leaflet-search", "dist/leaflet-search.min.css"),
    # folium.plugins.VectorGridProtobuf: the layers drawn from /tiles (app/maps/tiles.py)
    "vectorGrid": Asset("leaflet.vectorgrid", "dist/Leaflet.VectorGrid.bundled.min.js"),
    # the API documentation (/docs, /redoc): Swagger UI and ReDoc
    "swagger_ui_js": Asset("swagger-ui-dist", "swagger-ui-bundle.js"),
    "swagger_ui_css": Asset("swagger-ui-dist", "swagger-ui.css"),
    "swagger_ui_favicon": Asset("swagger-ui-dist", "favicon-32x32.png"),
    "redoc_js": Asset("redoc", "bundles/redoc.standalone.js"),
    # ours (app/maps/static)
    "gridmap_js": Asset("gridmap", "gridmap.js"),
    "gridmap_css": Asset("gridmap", "gridmap.css"),
}

#: folium defaults the pages leave out, and why.
DROPPED: dict[str, str] = {
    "glyphicons_css": "Bootstrap 3 glyphicons, only for folium.Icon(prefix='glyphicon'), "
    "which the pages do not use",
    "awesome_rotate_css": "rotated awesome markers, not used; folium serves it from GitHub",
}

_NPM_PACKAGES = tuple(sorted({a.package for a in ASSETS.values()} - {"folium", "gridmap"}))
#: Files the static route may serve (by suffix) and their media types.
MEDIA_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
    ".jpg": "image/jpeg",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".ttf": "font/ttf",
    ".map": "application/json",
}
_INLINE = "gridmap-inline:"
_CSS_URL = re.compile(r"url\(\s*(['\"]?)([^'\")]+)\1\s*\)")
# Inlined @font-face rules keep only the woff2 source every current browser reads.
_TTF_SOURCE = re.compile(r",\s*url\([^)]*\.ttf\)\s*format\(['\"]truetype['\"]\)")


class AssetStore:
    """The installed packages: versions, URLs, files for the static route, inline content.

    Parameters
    ----------
    asset_dir : Path
        The directory holding ``node_modules`` (``var/assets`` by default).
    """

    def __init__(self, asset_dir: Path):
        self.asset_dir = Path(asset_dir)
        self.node_modules = self.asset_dir / "node_modules"

    @classmethod
    def configured(cls) -> AssetStore:
        """The store of ``GRIDMAP_MAP_ASSET_DIR`` (default ``var/assets``).

        For pages built outside a running app (CLI, notebooks, benchmarks); the
        app hands its :class:`~app.config.MapSettings` down instead.
        """
        from app.config import MapSettings

        return cls(MapSettings().asset_dir)

    # -- packages ------------------------------------------------------------------------
    def root(self, package: str) -> Path:
        """Directory of ``package``."""
        if package == "folium":
            import folium

            return Path(folium.__file__).resolve().parent
        if package == "gridmap":
            return Path(__file__).resolve().parent / "static"
        if package not in _NPM_PACKAGES:
            raise AssetError(f"unknown asset package {package!r}")
        return self.node_modules / package

    def version(self, package: str) -> str:
        """Installed version (for ours: a hash of the files, so a change busts caches)."""
        return self._versions[package]

    @cached_property
    def _versions(self) -> dict[str, str]:
        self.check()
        import folium

        versions = {"folium": folium.__version__, "gridmap": self._own_hash()}
        for package in _NPM_PACKAGES:
            manifest = json.loads((self.root(package) / "package.json").read_text())
            versions[package] = manifest["version"]
        return versions

    def _own_hash(self) -> str:
        digest = hashlib.sha256()
        for path in sorted(self.root("gridmap").iterdir()):
            digest.update(path.name.encode() + path.read_bytes())
        return digest.hexdigest()[:12]

    def check(self) -> None:
        """Raise :class:`AssetError` naming every missing file, with the fix."""
        missing = [
            f"{a.package}/{a.path}"
            for a in ASSETS.values()
            if not (self.root(a.package) / a.path).is_file()
        ]
        if missing:
            raise AssetError(
                f"map assets missing under {self.node_modules}: "
                f"{', '.join(missing)}; {INSTALL_HINT}"
            )

    # -- serving -------------------------------------------------------------------------
    def url(self, name: str, prefix: str) -> str:
        """URL of asset ``name`` under ``prefix`` (e.g. ``/static/vendor/``)."""
        asset = _known(name)
        return f"{prefix}{asset.package}@{self.version(asset.package)}/{asset.path}"

    def file(self, path: str) -> Path | None:
        """The file behind ``package@version/inner/path``, or None (unknown, stale, outside).

        Any file of a known package with a served suffix may be asked for: the
        stylesheets refer to their images and fonts by relative URLs.
        """
        for package in sorted(self._versions, key=len, reverse=True):
            head = f"{package}@{self._versions[package]}/"
            if path.startswith(head):
                return self._inside(self.root(package), path[len(head) :])
        return None

    @staticmethod
    def _inside(root: Path, inner: str) -> Path | None:
        if "\x00" in inner:  # no file name holds NUL; the OS would refuse to resolve it
            return None
        root = root.resolve()
        candidate = (root / inner).resolve()
        if not candidate.is_relative_to(root) or candidate.suffix not in MEDIA_TYPES:
            return None
        return candidate if candidate.is_file() else None

    # -- inlining ------------------------------------------------------------------------
    def inline(self, name: str) -> str:
        """The ``<script>`` or ``<style>`` element holding asset ``name``."""
        asset = _known(name)
        path = self.root(asset.package) / asset.path
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".css":
            css = _TTF_SOURCE.sub("", text)
            css = _CSS_URL.sub(lambda m: _data_uri(m, path.parent), css)
            return "<style>" + css.replace("</style", "<\\/style") + "</style>"
        # "</script" inside a JS string or regex literal would end the element early.
        return "<script>" + text.replace("</script", "<\\/script") + "</script>"


def _known(name: str) -> Asset:
    asset = ASSETS.get(name)
    if asset is None:
        raise AssetError(
            f"folium asks for an asset {name!r} that has no local copy: add its "
            f"package to package.json and to app.maps.assets.ASSETS"
        )
    return asset


def _data_uri(match: re.Match, base: Path) -> str:
    ref = match.group(2).strip()
    if ref.startswith(("data:", "#", "http:", "https:", "//")):
        return match.group(0)
    path = (base / ref.split("?")[0].split("#")[0]).resolve()
    if not path.is_file():
        return match.group(0)  # e.g. IE-only behaviours; harmless, never loaded
    media = (
        MEDIA_TYPES.get(path.suffix)
        or mimetypes.guess_type(path.name)[0]
        or "application/octet-stream"
    )
    return f"url(data:{media};base64,{base64.b64encode(path.read_bytes()).decode()})"


# -- folium ----------------------------------------------------------------------------
def _walk(element: Element) -> Iterator[Element]:
    yield element
    for child in list(element._children.values()):
        yield from _walk(child)


def localize(root: Element, store: AssetStore, prefix: str | None) -> None:
    """Point every JS/CSS asset under ``root`` at local copies.

    Parameters
    ----------
    root : branca.element.Element
        The map's figure (``m.get_root()``), after every layer was added.
    store : AssetStore
    prefix : str or None
        URL prefix the app serves assets under (``/static/vendor/``), or None to
        inline them (then :func:`finish` must run on the rendered page).

    Raises
    ------
    AssetError
        If an element needs an asset without a local copy, or assets are missing.
    """
    store.check()
    for element in _walk(root):
        for attribute in ("default_js", "default_css"):
            links = getattr(element, attribute, None)
            if not links:
                continue
            local = [
                (name, _INLINE + name if prefix is None else store.url(name, prefix))
                for name, _ in links
                if name not in DROPPED
            ]
            setattr(element, attribute, local)  # on the instance: folium's class stays as is


_SCRIPT_TAG = re.compile(r'<script src="' + _INLINE + r'([^"]+)"></script>')
_LINK_TAG = re.compile(r'<link rel="stylesheet" href="' + _INLINE + r'([^"]+)"\s*/?>')
_REMOTE = re.compile(
    r'<(?:script[^>]*\bsrc|link[^>]*\bhref)\s*=\s*"((?:https?:)?//[^"]*)"', re.IGNORECASE
)


def finish(html: str, store: AssetStore) -> str:
    """Inline the assets :func:`localize` marked, and refuse a page that loads remote files.

    Raises
    ------
    AssetError
        If a ``<script src>`` or ``<link href>`` still points at another host.
    """
    remote = _REMOTE.findall(html)  # before inlining: library code may quote such tags
    if remote:
        raise AssetError(f"the page would load files from elsewhere: {remote[:3]}")
    html = _SCRIPT_TAG.sub(lambda m: store.inline(m.group(1)), html)
    return _LINK_TAG.sub(lambda m: store.inline(m.group(1)), html)
