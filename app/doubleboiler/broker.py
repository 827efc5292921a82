"""The database as Celery's broker, through kombu's SQLAlchemy transport.

This is the original project's "no extra add-on" spirit: one database is all a
hobbyist needs. The subclasses change these things:

- They poll on the worker's event loop. kombu's SQL transport is synchronous,
  so Celery would run its blocking loop and billiard's plain pool, whose
  children share one task pipe behind one lock: a child killed while waiting
  on it (kill -9, the OOM killer) takes the lock with it, and the worker never
  runs a job again nor finishes a warm shutdown. On the event loop Celery uses
  its asynchronous pool, one pipe per child, as with Redis.
- They poll every 0.2 s instead of kombu's 1 s (kombu hands every transport
  option to SQLAlchemy's create_engine, so the interval cannot be an option).
- They prune delivered messages: kombu marks a fetched message invisible and
  never deletes it (a redelivery is a new row), so the table would only grow.
- On SQLite their connections sync as Django's do (synchronous=NORMAL, which
  WAL mode keeps safe from corruption): kombu's default, FULL, made every
  publish, fetch and ack wait for an fsync while holding the database's one
  write lock, which every job's insert and claim also need.
- They look a queue's row up once per channel, and publish with one INSERT
  instead of an ORM unit of work: per message, those were a third of a
  publish and of a fetch (docs/benchmarks.md, the profile).
- They survive a race kombu only guards within one process: on a fresh
  database the worker and the web's /healthz create kombu's tables and the
  queue row at the same moment, and the loser's error used to stop the worker.
"""

import logging
import time
from datetime import datetime, timedelta
from queue import Empty
from types import SimpleNamespace

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport.sqlalchemy import Channel, Transport
from kombu.utils.json import dumps
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

log = logging.getLogger(__name__)

POLLING_INTERVAL_SECONDS = 0.2
# A delivered message is dead (kombu never reads an invisible row again); an
# hour keeps recent ones for whoever is debugging.
DELIVERED_MESSAGES_KEPT = timedelta(hours=1)
PRUNE_EVERY_SECONDS = 300

SQLALCHEMY_DIALECTS = {
    "sqlite": "sqlite",
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "pgsql": "postgresql+psycopg",
}


def _sync_like_django(dbapi_connection, connection_record) -> None:
    # The same PRAGMA as Django's init_command (doubleboiler/settings.py); the file is
    # already in WAL mode (journal_mode is kept by the file, synchronous per connection).
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


class DatabaseChannel(Channel):
    pruned_at = float("-inf")

    def _engine_from_config(self):
        engine = super()._engine_from_config()
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sync_like_django)
        return engine

    def _open(self):
        # Another process may create a table between SQLAlchemy's check and its
        # CREATE TABLE; each such loss means one more table exists, and kombu
        # has two, so the third try finds both.
        for attempt in range(3):
            try:
                return super()._open()
            except SQLAlchemyError:
                if attempt == 2:
                    raise

    def __init__(self, *args, **kwargs):
        self._queue_ids: dict[str, int] = {}
        super().__init__(*args, **kwargs)

    def _get_or_create(self, queue):
        # A queue's row never changes once it exists: read once per channel, not
        # before every publish and every fetch (kombu uses only the `.id` of what
        # this returns; _put below is the one place it used the row itself).
        queue_id = self._queue_ids.get(queue)
        if queue_id is None:
            try:
                row = super()._get_or_create(queue)
            except IntegrityError:
                # Another process inserted the queue between kombu's read and its
                # insert; reading again finds it.
                self.session.rollback()
                row = super()._get_or_create(queue)
            queue_id = self._queue_ids[queue] = row.id
        return SimpleNamespace(id=queue_id, name=queue)

    def _put(self, queue, payload, **kwargs):
        # The row kombu's Message(payload, queue) adds through the ORM (a unit of work per
        # message), as one INSERT: visible, version 1, no timestamp until it is
        # delivered (kombu/transport/sqlalchemy/models.py).
        row = {
            "queue_id": self._get_or_create(queue).id,
            "payload": dumps(payload),
            "visible": True,
            "version": 1,
        }
        try:
            self.session.execute(self.message_cls.__table__.insert().values(**row))
            self.session.commit()
        except IntegrityError:
            # The queue's row is gone (its tables were reset): look it up again next time.
            self.session.rollback()
            self._queue_ids.pop(queue, None)
            raise
        except OperationalError:
            # As kombu does: the publish fails (and can be retried) instead of
            # reporting a message that was never stored.
            self.session.rollback()
            raise

    def basic_ack(self, delivery_tag, multiple=False):
        super().basic_ack(delivery_tag, multiple=multiple)
        # A pool slot just freed up: fetch the next message now, not at the
        # next tick (with a prefetch of one per child, waiting for the tick
        # capped the worker at one job per child per polling interval).
        self.connection.poll_soon()

    def _get(self, queue):
        # Only consumers fetch, so only the worker prunes, at most every few minutes.
        if time.monotonic() - self.pruned_at >= PRUNE_EVERY_SECONDS:
            self.pruned_at = time.monotonic()
            self.prune_delivered()
        return super()._get(queue)

    def prune_delivered(self) -> int:
        """Delete messages delivered more than DELIVERED_MESSAGES_KEPT ago."""
        message = self.message_cls
        # kombu stamps sent_at with naive local time when it delivers a message.
        cutoff = datetime.now() - DELIVERED_MESSAGES_KEPT
        try:
            count = (
                self.session.query(message)
                .filter(message.visible == False)  # noqa: E712 - SQL, not Python
                .filter(message.sent_at < cutoff)
                .delete(synchronize_session=False)
            )
            self.session.commit()
        except SQLAlchemyError:
            self.session.rollback()
            log.warning("could not prune delivered broker messages", exc_info=True)
            return 0
        if count:
            log.info("pruned %d delivered broker messages", count)
        return count


class DatabaseTransport(Transport):
    Channel = DatabaseChannel
    polling_interval = POLLING_INTERVAL_SECONDS
    implements = Transport.implements.extend(asynchronous=True)

    loop = None

    def register_with_event_loop(self, connection, loop):
        # No socket to watch: poll on the loop's timer. Celery cancels timers
        # registered while connecting when the connection fails, and database
        # errors raised here reach the loop, which reconnects.
        self.loop = loop
        loop.call_repeatedly(self.polling_interval, self.deliver_ready_messages)

    def poll_soon(self) -> None:
        if self.loop is not None:
            self.loop.call_soon(self.deliver_ready_messages)

    def deliver_ready_messages(self) -> None:
        """Hand over every message the consumers can take now, without waiting."""
        while True:
            try:
                self.cycle.get(self._deliver, timeout=0)
            except Empty:
                return


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
