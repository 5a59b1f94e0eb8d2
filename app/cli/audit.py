"""``gridmap audit``: what the audit log recorded — sign-ins, user and key changes, API writes."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from app.cli.common import console, open_engine

COLUMNS = {
    "at": "时间 time",
    "actor_kind": "类型 kind",
    "actor_label": "操作者 actor",
    "action": "操作 action",
    "target": "对象 target",
    "outcome": "结果 outcome",
    "status": "状态码 status",
    "address": "地址 address",
}
SHOWN = 200


def _moment(text: str | None, option: str, end: bool = False) -> datetime | None:
    """A date (whole day, China Standard Time) or an ISO time; None for None."""
    from gis.vocabulary import LOCAL_TZ

    if text is None:
        return None
    try:
        if len(text) == 10:
            day = datetime.combine(datetime.fromisoformat(text).date(), time.min, LOCAL_TZ)
            return day + timedelta(days=1) if end else day
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            "a date (2026-12-01) or a time (2026-12-01T08:00:00+08:00)", param_hint=option
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=LOCAL_TZ)


def audit(
    since: Annotated[
        str, typer.Option(help="From this date (China Standard Time) or ISO time on.")
    ],
    until: Annotated[
        str | None, typer.Option(help="Up to this date (inclusive) or before this ISO time.")
    ] = None,
    actor: Annotated[
        str | None, typer.Option(help="Only this actor: a user name or a key prefix.")
    ] = None,
    action: Annotated[
        str | None,
        typer.Option(
            help="Only this action: sign_in, sign_out, user.create, user.disable, "
            "user.enable, user.reset_password, key.create, key.revoke, 'api POST' …"
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write every row to .csv or .xlsx.")
    ] = None,
):
    """List the audit log: who did what, when, from which address, and the outcome."""
    import pandas as pd

    from app.services.audit import AuditFilter, list_entries
    from gis.tables import write_table
    from gis.vocabulary import LOCAL_TZ

    if output is not None and output.suffix.lower() not in (".csv", ".xlsx"):
        raise typer.BadParameter("use .csv or .xlsx", param_hint="--output")
    where = AuditFilter(
        _moment(since, "--since"), _moment(until, "--until", end=True), actor, action
    )
    rows = list_entries(open_engine(), where)
    for row in rows:
        row["at"] = row["at"].astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M:%S")
    if output is not None:
        frame = pd.DataFrame(rows, columns=[*COLUMNS, "detail"])
        frame["detail"] = frame["detail"].map(lambda d: "" if d is None else str(d))
        write_table(frame.rename(columns=COLUMNS), output)
        console.print(f"wrote {len(rows):,} audit rows to {output}")
        return
    table = Table(*COLUMNS.values(), title=f"审计日志 audit log: {len(rows):,} rows")
    for row in rows[-SHOWN:]:
        table.add_row(*["" if row[c] is None else str(row[c]) for c in COLUMNS])
    console.print(table)
    if len(rows) > SHOWN:
        console.print(f"the last {SHOWN} shown; write them all with -o FILE.xlsx")
