"""A throwaway PostgreSQL server on loopback: the benchmark's own (bench/postgres_server.py)."""

import contextlib

import pytest

from bench.postgres_server import binaries, postgres_server

__all__ = ["binaries", "on_sqlite_and_postgresql", "postgres_server"]


@contextlib.contextmanager
def _sqlite_file(tmp_path):
    yield f"sqlite:///{tmp_path / 'database.sqlite3'}"


# Runs the test twice with `database(tmp_path)`, a context manager yielding a database
# URL: a SQLite file, then a fresh PostgreSQL server (skipped where none is installed).
on_sqlite_and_postgresql = pytest.mark.parametrize(
    "database",
    [
        _sqlite_file,
        pytest.param(
            lambda _: postgres_server(),
            marks=pytest.mark.skipif(binaries() is None, reason="PostgreSQL is not installed"),
        ),
    ],
    ids=["sqlite", "postgresql"],
)
