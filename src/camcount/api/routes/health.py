"""``/healthz`` (the process is up) and ``/readyz`` (the database answers, migrations are current)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from camcount.api.deps import get_db
from camcount.db import migrations as ledger
from camcount.db.pools import Database

router = APIRouter(tags=["health"])
log = logging.getLogger("camcount.api")


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: bool
    migrations_current: bool


@router.get("/healthz", response_model=Health, summary="The process is up")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="The database answers and the control plane's migrations are current",
    responses={503: {"model": Readiness, "description": "Not ready"}},
)
async def readyz(db: Annotated[Database, Depends(get_db)]) -> Readiness | JSONResponse:
    database = current = False
    try:
        pool = await db.app_pool()
        async with pool.connection(timeout=2.0) as conn:
            pending = await ledger.core_migrations_pending(conn)
            await conn.rollback()
        database = True
        current = not pending
    except Exception as exc:  # any failure means: not ready; the answer says which part
        log.warning("not ready: %s: %s", type(exc).__name__, exc)
    result = Readiness(
        status="ready" if current else "not ready", database=database, migrations_current=current
    )
    if not current:
        return JSONResponse(result.model_dump(), status_code=503)
    return result
