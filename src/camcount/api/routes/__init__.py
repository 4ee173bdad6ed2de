"""The router tree. ``create_app`` mounts every router listed here.

- ``TENANT_ROUTERS``: mounted under ``/t/{slug}``. Paths inside are relative (``/sites``); the
  ``slug`` parameter is declared by :func:`camcount.api.deps.require`, which every tenant route
  depends on. The same routes also answer without the prefix when the host name or ``X-Tenant``
  names the tenant (see :mod:`camcount.api.middleware`).
- ``ADMIN_ROUTERS``: mounted under ``/admin``; every route depends on ``require_operator()``.

Colleagues: append your router to the right list (one line each).
"""

from __future__ import annotations

from fastapi import APIRouter

from camcount.api.routes import (
    admin_servers,
    admin_tenants,
    auth,
    cameras,
    counts,
    events,
    invoices,
    keys,
    monitoring,
    plans_admin,
    sites,
    usage,
    users,
)

TENANT_ROUTERS: list[APIRouter] = [
    auth.router,
    sites.router,
    cameras.router,
    users.router,
    keys.router,
    events.router,
    counts.router,
    usage.router,
    invoices.router,
    monitoring.tenant_router,
]

ADMIN_ROUTERS: list[APIRouter] = [
    admin_tenants.router,
    admin_servers.router,
    plans_admin.router,
    monitoring.admin_router,
]
