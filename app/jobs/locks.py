"""Database locks that every process and dyno sees, held to the end of a transaction.

PostgreSQL: transaction-level advisory locks. SQLite: the settings open every
transaction IMMEDIATE, which takes the database's one write lock at BEGIN, so
any transaction is already exclusive. Call these inside transaction.atomic().
"""

from django.db import connection

ADMISSION = 0x6A6F6273  # "jobs": job creation's checks and insert
CLIENT_SLOTS = 0x736C6F74  # "slot": with a client's address, its running jobs


def lock_admission() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADMISSION])


def lock_client_slots(client: str) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [CLIENT_SLOTS, client])
