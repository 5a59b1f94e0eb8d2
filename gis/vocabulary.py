"""The words of the domain, declared once: levels, statuses, roles, sources, the local clock.

Everything that names a status or a level — the database's CHECK constraints,
the API's schemas, the closed-loop rules, the demo generator, the readers of
incident files — imports it from here, so a new status or role is added in one
place (and in a migration, which records the database's own copy).

See ``docs/domain.md`` for what each word means in a city office.
"""

from __future__ import annotations

from typing import Final, Literal, get_args
from zoneinfo import ZoneInfo

__all__ = [
    "ASSIGN_STATUSES",
    "AREA_LEVELS",
    "HANDLING_LEVELS",
    "INCIDENT_STATUSES",
    "KNOWN_SOURCES",
    "LOCAL_TIMEZONE",
    "LOCAL_TZ",
    "LOCATION_STATUSES",
    "OPEN_STATUSES",
    "RESOLVED_STATUSES",
    "ROLES",
    "STAFF_ROLES",
    "STEP_TIMESTAMP",
    "AssignStatus",
    "HandlingLevel",
    "IncidentStatus",
    "LocationStatus",
    "Role",
]

#: The hierarchy from the top; a unified code grows by one segment per level.
AREA_LEVELS: Final = ("district", "street", "community", "grid", "micro_grid")

#: The closed loop, in order: 发现 report → 立案 register → 派遣 dispatch → 处置 handle →
#: 核查 verify → 结案 close.
IncidentStatus = Literal["reported", "registered", "dispatched", "handled", "verified", "closed"]
INCIDENT_STATUSES: Final[tuple[str, ...]] = get_args(IncidentStatus)
#: Statuses of an incident nobody has handled yet.
OPEN_STATUSES: Final = INCIDENT_STATUSES[:3]
#: Statuses after the handling step.
RESOLVED_STATUSES: Final = INCIDENT_STATUSES[3:]
#: Status → the incident column holding the time it was reached.
STEP_TIMESTAMP: Final = {status: f"{status}_at" for status in INCIDENT_STATUSES}

#: Who handles an incident: the grid, else the community, else the street (only upwards).
HandlingLevel = Literal["grid", "community", "street"]
HANDLING_LEVELS: Final[tuple[str, ...]] = get_args(HandlingLevel)

#: Where a point falls (see ``docs/assignment.md``).
AssignStatus = Literal["inside", "boundary", "snapped", "outside"]
ASSIGN_STATUSES: Final[tuple[str, ...]] = get_args(AssignStatus)

#: How an incident got its location.
LocationStatus = Literal["located", "geocoded", "unlocated"]
LOCATION_STATUSES: Final[tuple[str, ...]] = get_args(LocationStatus)

#: The core roles of grid staff (网格长, 专职网格员, 微网格员, 专属网格长); a roster accepts
#: these and the further roles of ``gis.staff.DEFAULT_ROLES`` (兼职网格员, 网格指导员 …).
STAFF_ROLES: Final = ("grid_leader", "grid_worker", "micro_grid_worker", "dedicated_grid_leader")

#: Roles of API keys and users, each allowed what the ones before it may do.
Role = Literal["viewer", "operator", "admin"]
ROLES: Final[tuple[str, ...]] = get_args(Role)

#: Incident sources gridmap knows by name (12345 hotline, 110 police, patrol, residents …);
#: a foreign source name is accepted as well.
KNOWN_SOURCES: Final = ("hotline_12345", "police_110", "patrol", "resident", "petition", "other")

#: Naive report times in China mean China Standard Time.
LOCAL_TIMEZONE: Final = "Asia/Shanghai"
LOCAL_TZ: Final = ZoneInfo(LOCAL_TIMEZONE)
