"""Connection strings for the owner and the application role, on any registered server.

The owner URL (``CAMCOUNT_DATABASE_URL`` or the embedded server) is the root of everything: the
application role's connections use the same host and port with the application role's name.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from camcount.config import Settings
from camcount.db.embedded import embedded_owner_url

DEFAULT_DATABASE = "camcount"


@dataclass(frozen=True)
class ServerAddress:
    """How to reach one PostgreSQL server as the owner (a login that may ``SET ROLE`` the owner role)."""

    name: str
    owner_url: str

    def owner(self, dbname: str) -> str:
        return make_conninfo(self.owner_url, dbname=dbname)

    def app(self, dbname: str, settings: Settings) -> str:
        # Same host and options as the owner, never the owner's password.
        params = {k: v for k, v in conninfo_to_dict(self.owner_url).items() if k != "password"}
        params.update(dbname=dbname, user=settings.app_role)
        if settings.app_password is not None:
            params["password"] = settings.app_password.get_secret_value()
        return make_conninfo("", **params)


def main_database_name(owner_url: str) -> str:
    """The database named in the URL, or ``camcount`` when the URL names the maintenance database."""
    dbname = conninfo_to_dict(owner_url).get("dbname")
    if not dbname or dbname in ("postgres", "template1"):
        return DEFAULT_DATABASE
    return str(dbname)


def resolve_owner_url(settings: Settings) -> str:
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return embedded_owner_url(settings.home)
