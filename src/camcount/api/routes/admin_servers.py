"""``/admin/servers``: PostgreSQL servers for database-placement tenants (host and port only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from camcount.api.deps import get_db, require_operator
from camcount.db.pools import Database
from camcount.secretbox import secret_box
from camcount.tenancy.servers import add_server, list_servers

router = APIRouter(tags=["admin: servers"])
Operator = Annotated[str, Depends(require_operator())]
Db = Annotated[Database, Depends(get_db)]


class ServerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(max_length=40)]
    url: Annotated[str, Field(max_length=2000, description="Owner connection URL (stored encrypted)")]


class ServerOut(BaseModel):
    name: str
    default: bool
    host: str
    tenants: int


class ServerList(BaseModel):
    items: list[ServerOut]
    next_cursor: str | None = None


@router.get("/servers", response_model=ServerList)
async def servers(operator: Operator, db: Db) -> ServerList:
    async with db.owner() as conn:
        infos = await list_servers(conn, db)
    return ServerList(items=[ServerOut(**i.as_dict()) for i in infos])


@router.post("/servers", status_code=201, response_model=ServerOut)
async def add(body: ServerIn, operator: Operator, db: Db) -> ServerOut:
    info = await add_server(
        db, body.name, body.url, box=secret_box(db.settings), actor=f"operator:{operator}"
    )
    return ServerOut(**info.as_dict())
