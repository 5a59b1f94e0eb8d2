"""/departments: the district's departments a street whistles for (吹哨报到), and
/incidents/{id}/assignees: the staff a dispatch of that incident may name."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import ConnDep, ViewerDep
from app.api.errors import ERROR_RESPONSES
from app.api.incidents import IncidentId
from app.api.schemas import AssigneeOut, DepartmentOut
from app.services.departments import list_departments
from app.services.handling import eligible_assignees
from app.services.scope import check_incident_id

router = APIRouter(tags=["incidents"], responses=ERROR_RESPONSES)


@router.get("/departments", response_model=list[DepartmentOut], summary="Departments")
def get_departments(conn: ConnDep, _: ViewerDep) -> list[dict]:
    """The departments (委办局) incidents may be dispatched or whistled to, by code
    (``gridmap departments import``). Contacts are for officials: a viewer key is needed."""
    return list_departments(conn)


@router.get(
    "/incidents/{incident_id}/assignees",
    response_model=list[AssigneeOut],
    summary="Who a dispatch may name",
)
def get_assignees(
    conn: ConnDep,
    viewer: ViewerDep,
    incident_id: IncidentId,
) -> list[dict]:
    """The staff of the incident's grid and its micro-grids (active roster): the
    `assignee` ids a dispatch accepts. Empty for an incident outside every grid."""
    check_incident_id(conn, viewer, incident_id)
    return eligible_assignees(conn, incident_id)
