"""The database as Celery's broker, through kombu's SQLAlchemy transport.

This is the original project's "no extra add-on" spirit: one database is all a
hobbyist needs. The subclass only polls faster than kombu's 1 s default (kombu
hands every transport option to SQLAlchemy's create_engine, so the interval
cannot be passed as an option).
"""

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport.sqlalchemy import Transport

POLLING_INTERVAL_SECONDS = 0.2

SQLALCHEMY_DIALECTS = {
    "sqlite": "sqlite",
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "pgsql": "postgresql+psycopg",
}


class DatabaseTransport(Transport):
    polling_interval = POLLING_INTERVAL_SECONDS


# kombu reads the transport from the URL's scheme, up to the first "+": the
# broker URL is "dbsql+<SQLAlchemy URL>", as kombu's own "sqla+<URL>" is.
TRANSPORT_ALIAS = "dbsql"
TRANSPORT_ALIASES.setdefault(TRANSPORT_ALIAS, f"{__name__}:DatabaseTransport")


def broker_url(database_url: str) -> str:
    """The broker URL for DATABASE_URL, in the dialect names SQLAlchemy wants."""
    scheme, sep, rest = database_url.partition("://")
    if not sep or scheme not in SQLALCHEMY_DIALECTS:
        raise ValueError(
            f"cannot use a {scheme!r} database as the Celery broker: set CELERY_BROKER_URL "
            "or REDIS_URL"
        )
    return f"{TRANSPORT_ALIAS}+{SQLALCHEMY_DIALECTS[scheme]}://{rest}"
