"""``camcount usage``: every tenant's usage against its limits, with a status."""

from __future__ import annotations

from typing import Annotated

import typer

from camcount.cli.common import print_json, print_table, run
from camcount.limits.usage import usage_report


def usage(
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant (counted live).")] = None,
    status: Annotated[str | None, typer.Option(help="LOW, MEDIUM, HIGH or LIMIT_REACHED.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Usage per tenant and resource: limit, usage, percent, status and when a quota resets."""
    rows = run(lambda db: usage_report(db, tenant_slug=tenant, status=status, live=tenant is not None))
    if as_json:
        print_json([r.as_dict() for r in rows])
        return
    print_table("usage", ("tenant", "plan", "resource", "limit", "usage", "percent", "status", "resets at"),
                ((r.tenant, r.plan, r.resource, r.limit, r.usage, "" if r.percent is None else f"{r.percent}%",
                  r.status, r.resets_at.isoformat(timespec="seconds") if r.resets_at else "") for r in rows))  # fmt: skip
