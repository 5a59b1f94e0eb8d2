"""Who sees what: the area scope of a caller, the public map policy and staff phones.

A caller (API key or signed-in user, :class:`~app.services.security.Principal`) may
carry an area scope, a unified code. Codes nest by prefix, so an incident is in
scope when its grid code starts with the scope code; incidents outside every
grid are seen by unscoped callers only. Lists are filtered in SQL
(``queries.IncidentFilter.area_prefix``); single objects and area pages are
checked here, once, and refused with 403.

Anonymous callers never see incidents or anything derived from them, and never
staff phone numbers: what they see of the staff is the ``GRIDMAP_PUBLIC_STAFF``
setting (the grid-information notice, 网格信息公示).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection

from app.db import queries
from app.errors import NotFoundError, PermissionDeniedError
from app.services.analysis import cached
from app.services.map_data import MapData
from app.services.security import Principal

__all__ = [
    "Audience",
    "area_prefix",
    "audience_of",
    "check_area",
    "check_incident",
    "check_incident_id",
    "map_view",
    "on_branch",
    "scope_grids",
    "visible_staff",
]


def area_prefix(principal: Principal | None) -> str | None:
    """The scope code to filter incident lists by (None: no scope)."""
    return None if principal is None else principal.area


def on_branch(area: str | None, code: str) -> bool:
    """True when area ``code`` is inside scope ``area`` or contains it (its street, district)."""
    return area is None or code.startswith(area) or area.startswith(code)


def within(area: str | None, code: str) -> bool:
    """True when the whole of area ``code`` is inside scope ``area``."""
    return area is None or code.startswith(area)


def _refusal(principal: Principal, what: str) -> PermissionDeniedError:
    who = principal.name or principal.prefix
    return PermissionDeniedError(
        f"不在您的辖区 / {what} is outside the area {principal.area} of {who}"
    )


def check_area(principal: Principal | None, code: str) -> None:
    """Refuse (403) an area request off the caller's branch: another street's grid, say.

    An area containing the scope (the caller's own street or the district) is allowed:
    its incident lists and statistics are then filtered to the scope.
    """
    if principal is not None and not on_branch(principal.area, code):
        raise _refusal(principal, f"area {code}")


def check_incident(principal: Principal | None, grid_code: str | None, incident_id: Any) -> None:
    """Refuse (403) one incident outside the caller's scope."""
    if principal is not None and not principal.sees(grid_code):
        raise _refusal(principal, f"incident {incident_id}")


def check_incident_id(conn: Connection, principal: Principal | None, incident_id: int) -> None:
    """:func:`check_incident` for an id: looks up its grid (an unknown id passes, to 404)."""
    if principal is None or principal.area is None:
        return
    found, grid = queries.incident_grid(conn, incident_id)
    if found:
        check_incident(principal, grid, incident_id)


# -- what a page or an answer may carry ------------------------------------------------
@dataclass(frozen=True)
class Audience:
    """Who a page is built for; part of every page cache key.

    ``incidents`` False is the public (anonymous) page: boundaries, codes, names and
    the published staff only. ``area`` is the scope of the incidents drawn.
    """

    incidents: bool
    area: str | None = None
    staff: str = "names"  # what of the staff: "none", "roles", "names" or "phones"

    @property
    def key(self) -> tuple:
        return ("incidents" if self.incidents else "public", self.area, self.staff)


PUBLIC_STAFF_LEVELS = ("none", "roles", "names")


def audience_of(principal: Principal | None, public_staff: str = "names") -> Audience:
    """The audience of a caller: public when anonymous, else incidents within its scope."""
    if principal is None:
        return Audience(incidents=False, staff=public_staff)
    return Audience(incidents=True, area=principal.area, staff="phones")


def visible_staff(
    staff: Iterable[dict], code: str | None, principal: Principal | None, public_staff: str
) -> list[dict]:
    """The staff of area ``code`` as the caller may see them.

    Signed-in callers whose scope holds the area get name, role and phone; everyone
    else gets ``public_staff``: names and roles, roles only, or nobody.
    """
    if principal is not None and code is not None and within(principal.area, code):
        return [dict(s) for s in staff]
    if public_staff == "none":
        return []
    if public_staff == "roles":
        return [{"name": None, "role": s["role"], "phone": None} for s in staff]
    return [{"name": s["name"], "role": s["role"], "phone": None} for s in staff]


# -- the map data an audience may see ---------------------------------------------------
def map_view(data: MapData, audience: Audience) -> MapData:
    """``data`` with the incidents ``audience`` may see: none (public), its area's, or all.

    The view keeps every boundary and the staff (public grid information); it is
    cached on ``data``, so its analyses are computed once per data and audience.
    """
    if audience.incidents and audience.area is None:
        return data
    key = ("audience_view", audience.incidents, audience.area)

    def build() -> MapData:
        incidents = data.incidents
        if not audience.incidents:
            incidents = incidents.iloc[0:0]
        else:
            grid = incidents["grid_code"].astype("string")
            incidents = incidents[grid.str.startswith(audience.area or "").fillna(False).to_numpy()]
        return replace(
            data,
            incidents=incidents.reset_index(drop=True),
            fingerprint=(*data.fingerprint, key),
            cache={},
        )

    return cached(data, key, build)


def scope_grids(data: MapData, area: str) -> MapData:
    """The grids (and micro-grids) inside ``area`` with their incidents only: what Gi* of a
    scoped caller compares (the rest of the district is not theirs to see)."""
    view = map_view(data, Audience(incidents=True, area=area))
    key = ("scope_grids", area)

    def build() -> MapData:
        areas = {
            level: frame[frame["code"].str.startswith(area)].reset_index(drop=True)
            for level, frame in data.areas.items()
            if level in ("grid", "micro_grid")
        }
        if areas.get("grid") is None or not len(areas["grid"]):
            raise NotFoundError(f"no grid inside the area {area}")
        return replace(view, areas=areas, fingerprint=(*view.fingerprint, key), cache={})

    return cached(view, key, build)
