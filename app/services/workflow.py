"""The closed loop of incident handling, as rules on (status, handling level).

Digital city management runs 发现 report → 立案 register → 派遣 dispatch →
处置 handle → 核查 verify → 结案 close (``docs/domain.md``). Each step moves one
forward; the only step back is a failed verification, which sends a handled
incident back to ``dispatched``. What the grid can solve stays in the grid;
otherwise the community coordinates, otherwise the street: the handling level
is set at registration or dispatch and may only be escalated, never lowered,
and never changed once the incident is handled.

Who handles it is named at dispatch: a staff member of the incident's grid or a
department, and may be changed while it is dispatched. What the street cannot
solve it whistles (吹哨) to one or more departments; each reports in (报到) by
handling it, and the incident is handled when the last one has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from app.errors import IllegalTransitionError
from gis.errors import ValidationError
from gis.vocabulary import HANDLING_LEVELS, INCIDENT_STATUSES

_CHAIN = " → ".join(INCIDENT_STATUSES)


@dataclass(frozen=True)
class Change:
    """What a permitted request changes."""

    status: str
    handling_level: str | None
    kind: str  # "advance", "escalate", "reopen", "reassign", "whistle" or "report_in"
    clears: tuple[str, ...] = ()  # timestamp columns to reset


def plan_transition(
    status: str,
    level: str | None,
    target: str,
    target_level: str | None = None,
    *,
    redirect: bool = False,
) -> Change:
    """Check a requested change and return what to store.

    Parameters
    ----------
    status, level : str
        The incident's current status and handling level (None: not set yet).
    target : str
        Requested status; the current one to escalate the handling level only.
    target_level : str, optional
        Requested handling level.
    redirect : bool
        The request names who handles it (a staff member or a department): a
        dispatched incident may then stay dispatched, to someone else.

    Raises
    ------
    IllegalTransitionError
        With a sentence saying why and what is allowed instead.
    """
    if status == "closed":
        raise IllegalTransitionError(
            "the incident is closed; a closed incident is final "
            "(report a new one if the problem is back)"
        )
    new_level = _checked_level(status, level, target, target_level)
    if target == status:
        if redirect and status == "dispatched":
            return Change(status, new_level, "reassign")
        if new_level == level:
            raise IllegalTransitionError(
                f"the incident is already {status}; give the next step "
                f"({_next(status)}) or a higher handling level"
            )
        return Change(status, new_level, "escalate")
    if target == _next(status):
        if target == "dispatched" and new_level is None:
            new_level = "grid"  # the grid handles what nobody escalated
        return Change(target, new_level, "advance")
    if status == "handled" and target == "dispatched":
        return Change(target, new_level, "reopen", clears=("handled_at",))
    raise IllegalTransitionError(
        f"cannot go from {status} to {target}: the next step is {_next(status)} "
        f"({_CHAIN}; a failed verification sends a handled incident back to dispatched)"
    )


def _next(status: str) -> str:
    return INCIDENT_STATUSES[INCIDENT_STATUSES.index(status) + 1]


def _checked_level(status: str, level: str | None, target: str, wanted: str | None) -> str | None:
    if wanted is None or wanted == level:
        return level
    if target not in ("registered", "dispatched"):
        raise IllegalTransitionError(
            f"the handling level can only be set or escalated when the incident is "
            f"registered or dispatched, not when it is {target}"
        )
    if level is not None and HANDLING_LEVELS.index(wanted) < HANDLING_LEVELS.index(level):
        raise IllegalTransitionError(
            f"cannot lower the handling level from {level} to {wanted}: escalation only goes "
            "grid → community → street"
        )
    return wanted


def check_handler(target: str, assignee: object, department: object) -> None:
    """A handler (staff member or department) is named when dispatching, and only one."""
    if assignee is None and department is None:
        return
    if target != "dispatched":
        raise ValidationError(
            "assignee and department name who handles the incident: give them with "
            f"status dispatched, not {target} (a whistled department reports in with status "
            "handled and its department)"
        )
    if assignee is not None and department is not None:
        raise ValidationError(
            "dispatch to a staff member of the grid (assignee) or to a department, not both"
        )


def plan_whistle(
    status: str, level: str | None, departments: Sequence[str], whistled: Mapping[str, bool]
) -> Change:
    """吹哨: the street calls ``departments`` in; ``whistled`` maps those already called to
    whether they reported."""
    if status == "closed":
        raise IllegalTransitionError("the incident is closed; a closed incident is final")
    if level != "street":
        raise IllegalTransitionError(
            "only the street whistles (吹哨) for departments: escalate the handling level to "
            f"street first (grid → community → street); it is handled at {level or 'no level yet'}"
        )
    if status not in ("registered", "dispatched"):
        back = " (a failed verification sends it back to dispatched)" if status == "handled" else ""
        raise IllegalTransitionError(
            f"the street whistles for a registered or dispatched incident, not a {status} one{back}"
        )
    again = sorted(set(departments) & set(whistled))
    if again:
        raise IllegalTransitionError(
            f"already whistled for this incident: {', '.join(again)}; each department reports "
            "in by handling it (status handled with department)"
        )
    return Change("dispatched", level, "whistle")


def plan_report(
    status: str, level: str | None, department: str, whistled: Mapping[str, bool]
) -> Change:
    """报到: a whistled department reports in by handling; the last one makes it handled."""
    if department not in whistled:
        called = ", ".join(sorted(whistled)) or "none"
        raise IllegalTransitionError(
            f"department {department} was not whistled for this incident (whistled: {called})"
        )
    if status != "dispatched":
        raise IllegalTransitionError(
            f"a department reports by handling a dispatched incident; this one is {status}"
        )
    if whistled[department]:
        raise IllegalTransitionError(f"department {department} has already reported in")
    waiting = [code for code, done in whistled.items() if not done and code != department]
    return Change("dispatched" if waiting else "handled", level, "report_in")


def waiting_departments(whistled: Mapping[str, bool]) -> list[str]:
    """Whistled departments that have not reported in yet."""
    return sorted(code for code, done in whistled.items() if not done)
