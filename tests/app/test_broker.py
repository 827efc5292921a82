"""The database broker: kombu's SQL transport, polling faster and pruning."""

from datetime import datetime, timedelta

import pytest
from kombu import Connection, Queue
from sqlalchemy import text

from doubleboiler import broker
from tests.support.postgres import binaries, on_sqlite_and_postgresql, postgres_server


@on_sqlite_and_postgresql
def test_delivered_messages_are_pruned_once_old_and_pending_ones_kept(tmp_path, database):
    with (
        database(tmp_path) as database_url,
        Connection(broker.broker_url(database_url)) as connection,
    ):
        queue = connection.SimpleQueue("jobs")
        for number in range(4):
            queue.put({"n": number})
        for _ in range(3):
            queue.get(timeout=1).ack()  # three delivered, one still pending
        channel = queue.channel
        assert isinstance(channel, broker.DatabaseChannel)
        message = channel.message_cls
        session = channel.session
        delivered = session.query(message).filter(message.visible == False).order_by(message.id)  # noqa: E712
        # Two were delivered long ago, one just now.
        old = datetime.now() - broker.DELIVERED_MESSAGES_KEPT - timedelta(minutes=1)
        for row in delivered.limit(2):
            row.sent_at = old
        session.commit()

        assert channel.prune_delivered() == 2
        assert session.query(message).filter(message.visible == False).count() == 1  # noqa: E712
        assert queue.get(timeout=1).payload == {"n": 3}  # the pending one survived
        queue.close()


def test_the_worker_prunes_when_it_fetches_at_most_every_few_minutes(tmp_path, monkeypatch):
    url = broker.broker_url(f"sqlite:///{tmp_path / 'broker.sqlite3'}")
    pruned = []
    monkeypatch.setattr(broker.DatabaseChannel, "prune_delivered", lambda self: pruned.append(1))
    with Connection(url) as connection:
        queue = connection.SimpleQueue("jobs")
        for number in range(3):
            queue.put({"n": number})
        for _ in range(3):
            queue.get(timeout=1).ack()
        queue.close()
    assert pruned == [1]  # the first fetch prunes, the next ones within 5 minutes do not


def test_polling_is_faster_than_kombus_default():
    assert broker.DatabaseTransport.polling_interval < 1


def test_the_worker_polls_on_its_event_loop_without_waiting(tmp_path):
    # Asynchronous, so Celery runs its event loop and its per-child-pipe pool.
    assert broker.DatabaseTransport.implements.asynchronous

    class Loop:
        soon = 0

        def call_repeatedly(self, seconds, callback, *args):
            self.timer = (seconds, callback)

        def call_soon(self, callback, *args):
            assert callback == self.timer[1]
            self.soon += 1

    url = broker.broker_url(f"sqlite:///{tmp_path / 'broker.sqlite3'}")
    with Connection(url) as connection:
        queue = Queue("jobs")
        with connection.Producer() as producer:
            for number in range(3):
                producer.publish({"n": number}, routing_key="jobs", declare=[queue])
        loop = Loop()
        connection.transport.register_with_event_loop(connection.connection, loop)
        seconds, poll = loop.timer
        assert seconds == broker.POLLING_INTERVAL_SECONDS
        messages = []
        with connection.Consumer(queue, callbacks=[lambda body, message: messages.append(message)]):
            poll()  # one tick delivers what is there, and returns at once when empty
            assert [message.payload["n"] for message in messages] == [0, 1, 2]
            poll()
            assert len(messages) == 3
            # Each acknowledgement frees a slot: poll again at once, not at the next tick.
            for message in messages:
                message.ack()
            assert loop.soon == 3


def test_waiting_messages_counts_only_what_no_worker_fetched(tmp_path):
    from doubleboiler.celery import app, waiting_messages

    url = broker.broker_url(f"sqlite:///{tmp_path / 'broker.sqlite3'}")
    with Connection(url) as connection:
        queue = connection.SimpleQueue(app.conf.task_default_queue)
        for number in range(3):
            queue.put({"n": number})
        assert waiting_messages(connection) == 3
        fetched = queue.get(timeout=1)
        assert waiting_messages(connection) == 2  # fetched, not yet acknowledged
        fetched.ack()
        assert waiting_messages(connection) == 2
        queue.close()


@pytest.mark.skipif(binaries() is None, reason="PostgreSQL is not installed")
def test_counting_waiting_messages_gives_the_broker_connection_back():
    # The connection budget gives each process one broker connection on the database
    # broker (BROKER_DATABASE_POOL_SIZE=1): after /healthz or the requeue sweep counted
    # the queue, a publish on another channel must still get that connection.
    from doubleboiler.celery import app, waiting_messages

    with postgres_server() as database_url:
        url = broker.broker_url(database_url)
        options = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 3}
        with (
            Connection(url, transport_options=options) as counting,
            Connection(url, transport_options=options) as publishing,
        ):
            assert waiting_messages(counting) == 0
            queue = publishing.SimpleQueue(app.conf.task_default_queue)
            queue.put({"n": 1})  # sqlalchemy.exc.TimeoutError after 3 s without the fix
            assert waiting_messages(counting) == 1
            queue.close()


def _declare_after(barrier, url: str, queue: str) -> None:
    with Connection(url) as connection:
        channel = connection.default_channel
        barrier.wait()
        channel.queue_declare(queue=queue, durable=True, auto_delete=False)


def test_processes_declaring_the_same_new_queue_at_once_all_succeed(tmp_path):
    # On a fresh database the worker declares its queue while /healthz declares
    # it too; kombu's check-then-create only guards threads of one process.
    import multiprocessing

    context = multiprocessing.get_context("fork")
    for round_number in range(8):
        url = broker.broker_url(f"sqlite:///{tmp_path / f'broker-{round_number}.sqlite3'}")
        if round_number % 2:  # every other round, only the queue row is new
            with Connection(url) as connection:
                connection.default_channel.session  # noqa: B018 - creates the tables
        barrier = context.Barrier(4)
        workers = [
            context.Process(target=_declare_after, args=(barrier, url, "celery")) for _ in range(4)
        ]
        for process in workers:
            process.start()
        for process in workers:
            process.join(timeout=30)
        assert [process.exitcode for process in workers] == [0] * 4, f"round {round_number}"


def test_sqlite_broker_connections_sync_as_djangos_do(tmp_path):
    # Django's connections run PRAGMA synchronous=NORMAL (settings.py); kombu's would
    # default to FULL (2), an fsync under the one write lock at every publish and ack.
    url = broker.broker_url(f"sqlite:///{tmp_path / 'broker.sqlite3'}")
    with Connection(url) as connection:
        queue = connection.SimpleQueue("jobs")
        queue.put({"n": 1})
        session = queue.channel.session
        assert session.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
        queue.get(timeout=1).ack()
        queue.close()


@on_sqlite_and_postgresql
def test_a_publish_is_one_insert_of_the_row_kombu_would_add(tmp_path, database):
    from sqlalchemy import event

    with (
        database(tmp_path) as database_url,
        Connection(broker.broker_url(database_url)) as connection,
    ):
        queue = connection.SimpleQueue("jobs")
        queue.put({"n": 0})  # the queue's row is looked up (or made) here, once
        channel = queue.channel
        statements = []
        engine = channel.session.get_bind()
        record = lambda conn, cursor, sql, *args: statements.append(sql.split()[0].upper())  # noqa: E731
        event.listen(engine, "before_cursor_execute", record)
        try:
            for number in range(1, 4):
                queue.put({"n": number})
        finally:
            event.remove(engine, "before_cursor_execute", record)
        assert statements == ["INSERT"] * 3  # no queue lookup, no ORM flush around it
        message = channel.message_cls
        rows = channel.session.query(message).order_by(message.id).all()
        assert [(row.visible, row.version, row.sent_at) for row in rows] == [(True, 1, None)] * 4
        assert len({row.queue_id for row in rows}) == 1
        assert [queue.get(timeout=1).payload["n"] for _ in range(4)] == [0, 1, 2, 3]
        queue.close()
