"""A throwaway PostgreSQL server on loopback: the benchmark's own (bench/postgres_server.py)."""

from bench.postgres_server import binaries, create_database, postgres_server

__all__ = ["binaries", "create_database", "postgres_server"]
