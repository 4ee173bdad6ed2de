"""``GET /bench/constant``: the benchmark's bare baseline (mounted only with CAMCOUNT_BENCH_ENDPOINTS)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

router = APIRouter(include_in_schema=False)


class Constant(BaseModel):
    id: int
    name: str


@router.get("/bench/constant", response_model=Constant)
async def constant() -> Constant:
    return Constant(id=1, name="constant")
