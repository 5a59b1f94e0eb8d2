"""The closed loop of incident handling, as rules on (status, handling level).

Digital city management runs 发现 report → 立案 register → 派遣 dispatch →
处置 handle → 核查 verify → 结案 close (``docs/domain.md``). Each step moves one
forward; the only step back is a failed verification, which sends a handled
incident back to ``dispatched``. What the grid can solve stays in the grid;
otherwise the community coordinates, otherwise the street: the handling level
is set at registration or dispatch and may only be escalated, never lowered,
and never changed once the incident is handled.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.errors import IllegalTransitionError
from gis.vocabulary import HANDLING_LEVELS, INCIDENT_STATUSES

_CHAIN = " → ".join(INCIDENT_STATUSES)


@dataclass(frozen=True)
class Change:
    """What a permitted request changes."""

    status: str
    handling_level: str | None
    kind: str  # "advance", "escalate" or "reopen"
    clears: tuple[str, ...] = ()  # timestamp columns to reset


def plan_transition(
    status: str, level: str | None, target: str, target_level: str | None = None
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
