"""A STAND-IN for the Dokku command line, for tests only.

Real Dokku cannot be installed on the machines these tests run on, so the `dokku` Molecule
scenario installs this stand-in on its Debian "VM" instead. It answers the subset of Dokku
commands the roles use the way Dokku documents (and its source implements) them: argument
syntax, stdout versus stderr, message prefixes, exit codes and output formats. Instead of
Docker containers it builds a virtualenv per release, runs processes as systemd units and
routes HTTP through nginx, backed by the instance's own PostgreSQL and Redis.

The behaviour it copies is that of Dokku 0.38 (core plugins) with the dokku-postgres and
dokku-redis plugins; see README.md next to this package for the deliberate differences.
"""

__all__ = ["STANDIN_NOTICE"]

STANDIN_NOTICE = "This is a STAND-IN for Dokku used by double-boiler's tests; it is not Dokku."
