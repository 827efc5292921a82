"""Start one container's process: its own host name, the app's user, then the script.

Docker gives every container a UTS namespace whose host name is the first 12 characters of
the container ID (Dokku sets no --hostname: dokku/dokku
plugins/scheduler-docker-local/bin/scheduler-deploy-process-container), so two containers
of one app are two hosts (two Celery nodes, two heartbeat rows). The stand-in's processes
share one machine: as root, this unshares the UTS namespace and sets the host name before
dropping to the app's user; without root (the stand-in's own tests as a user) only
$HOSTNAME says it. Standalone (run by path with `python3 -I`): standard library only.

Usage: launch.py --hostname NAME [--user USER] -- SCRIPT [ARG...]
"""

from __future__ import annotations

import ctypes
import os
import pwd
import socket
import sys

CLONE_NEWUTS = 0x04000000


def own_hostname(name: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWUTS) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare(CLONE_NEWUTS): {os.strerror(err)}")
    socket.sethostname(name)


def drop_to(user: str) -> None:
    entry = pwd.getpwnam(user)
    os.initgroups(user, entry.pw_gid)
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)


def main(argv: list[str]) -> int:
    hostname, user = "", ""
    while argv and argv[0] != "--":
        flag, value, argv = argv[0], argv[1], argv[2:]
        if flag == "--hostname":
            hostname = value
        elif flag == "--user":
            user = value
        else:
            print(f"launch.py: unknown option {flag}", file=sys.stderr)
            return 2
    command = argv[1:]
    if not command:
        print("launch.py: no command", file=sys.stderr)
        return 2
    if os.geteuid() == 0:
        if hostname:
            try:
                own_hostname(hostname)
            except OSError as exc:  # no CAP_SYS_ADMIN: the machine's name, $HOSTNAME set
                print(f"launch.py: keeping the machine's host name: {exc}", file=sys.stderr)
        if user:
            drop_to(user)
    if hostname:
        os.environ["HOSTNAME"] = hostname
    os.execv(command[0], command)  # noqa: S606 - the instance script, argv only
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
