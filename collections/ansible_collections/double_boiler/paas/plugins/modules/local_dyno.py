#!/usr/bin/python
"""Run the outer Procfile's web process on this machine, detached, like a dyno."""

from __future__ import annotations

DOCUMENTATION = r"""
module: local_dyno
short_description: Run an app's outer web process (bin/dyno) on this machine
author:
  - double-boiler contributors (@double-boiler)
description:
  - Runs the Procfile C(release) command when migrations are pending, then starts the outer
    C(web) process detached from Ansible (it outlives the play), logging to a file.
  - The environment comes from O(env_file) and O(secret_env_file) (KEY=VALUE lines) plus
    C(DJANGO_SECRET_KEY) read from O(secret_file), so secrets never pass through Ansible's
    results or process arguments.
  - Whether migrations are pending is asked of the C(manage.py) the C(release) command runs
    (C(manage.py migrate --check)); the release runs only then.
  - A fingerprint of the environment, the secret and the app's files is recorded with the pid;
    a running dyno whose fingerprint still matches is left alone, otherwise it is restarted.
  - O(state=stopped) stops every process of the dyno, by pid, and nothing else.
options:
  source_dir:
    description:
      - The app checkout, following the two-Procfile contract (Procfile, LocalProcfile,
        bin/dyno; see M(double_boiler.paas.app_contract)).
    type: path
    required: true
  state_dir:
    description: Where the pid file and the log live.
    type: path
    required: true
  venv_dir:
    description: The app's virtualenv.
    type: path
    required: true
  env_file:
    description: Environment file, one KEY=VALUE per line.
    type: path
  secret_env_file:
    description: More environment, KEY=VALUE lines whose values are secrets (never returned).
    type: path
  secret_file:
    description: File holding DJANGO_SECRET_KEY.
    type: path
  state:
    description: Whether the dyno runs.
    type: str
    choices: [started, stopped]
    default: started
  grace_seconds:
    description: How long to wait after SIGTERM before SIGKILL.
    type: int
    default: 30
extends_documentation_fragment:
  - double_boiler.paas.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
    details: Reports what would start or stop; no diff.
"""

EXAMPLES = r"""
- name: Start the dyno detached (restarted only when its code or environment changed)
  double_boiler.paas.local_dyno:
    source_dir: /srv/checkout
    state_dir: ~/.local/share/double-boiler
    venv_dir: ~/.local/share/double-boiler/venv
    env_file: ~/.local/share/double-boiler/env
    secret_file: ~/.local/share/double-boiler/secret_key
    state: started

- name: Stop it (SIGTERM to its processes, SIGKILL after 30 s)
  double_boiler.paas.local_dyno:
    source_dir: /srv/checkout
    state_dir: ~/.local/share/double-boiler
    venv_dir: ~/.local/share/double-boiler/venv
    state: stopped
"""

RETURN = r"""
action:
  description: What was done (started, restarted, stopped, unchanged).
  type: str
  returned: always
pid:
  description: Pid of the outer process, when running.
  type: int
  returned: when running
log_file:
  description: Where the dyno's output goes.
  type: str
  returned: always
release:
  description: Whether the release command ran, and its output's last lines.
  type: dict
  returned: when state is started
"""

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.double_boiler.paas.plugins.module_utils.procfile import (
    manage_py,
    read_procfile,
)

# Files whose content the running dyno depends on; a change restarts it.
# The directory holding manage.py (the Django project) is added to these.
FINGERPRINTED = ("Procfile", "LocalProcfile", "gunicorn.conf.py", "requirements.txt", "bin")
SKIPPED_DIRECTORIES = {"__pycache__", "staticfiles", ".git", ".venv", "node_modules"}
INHERITED = ("HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR", "PATH")
SKIPPED_SUFFIXES = (".pyc", ".sqlite3", ".sqlite3-wal", ".sqlite3-shm", ".sqlite3-journal")


def read_env_file(path: str) -> dict[str, str]:
    env = {}
    with open(path) as handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.partition("=")
            if not sep or not key.isidentifier():
                raise ValueError(f"{path}:{number} is not KEY=VALUE")
            env[key] = value
    return env


def fingerprint(source_dir: str, files: list[str], project_dir: str = "app") -> str:
    digest = hashlib.sha256()
    for path in files:
        with open(path, "rb") as handle:
            digest.update(hashlib.sha256(handle.read()).digest())
    for top in (*FINGERPRINTED, os.path.normpath(project_dir)):
        root = os.path.join(source_dir, top)
        paths = [root] if os.path.isfile(root) else []
        for directory, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRECTORIES)
            paths += [os.path.join(directory, name) for name in sorted(filenames)]
        for path in paths:
            if path.endswith(SKIPPED_SUFFIXES):
                continue
            digest.update(os.path.relpath(path, source_dir).encode())
            with open(path, "rb") as handle:
                digest.update(hashlib.sha256(handle.read()).digest())
    return digest.hexdigest()


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks: tells a live pid from a reused one."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            found.append(int(entry))
    return found


def process_tree(pid: int) -> list[tuple[int, str]]:
    """The dyno's processes, each with its start time, outer process first."""
    tree, queue = [], [pid]
    while queue:
        current = queue.pop(0)
        started = start_time(current)
        if started is not None:
            tree.append((current, started))
            queue.extend(children_of(current))
    return tree


class Dyno:
    def __init__(self, module: AnsibleModule) -> None:
        params = module.params
        self.module = module
        self.source_dir = params["source_dir"]
        self.state_dir = params["state_dir"]
        self.venv_dir = params["venv_dir"]
        self.pid_file = os.path.join(self.state_dir, "dyno.pid")
        self.log_file = os.path.join(self.state_dir, "dyno.log")

    def recorded(self) -> dict | None:
        """The pid file, if the process it names is still the one we started."""
        try:
            with open(self.pid_file) as handle:
                record = json.load(handle)
        except (OSError, ValueError):
            return None
        if start_time(record.get("pid", 0)) != record.get("start_time"):
            return None
        return record

    def environment(self) -> dict[str, str]:
        params = self.module.params
        # Like a platform, give the dyno its config and little else: variables
        # of the shell that ran Ansible (DJANGO_SETTINGS_MODULE, VIRTUAL_ENV...)
        # must not leak into the app.
        env = {key: os.environ[key] for key in INHERITED if key in os.environ}
        for name in ("env_file", "secret_env_file"):
            if params[name]:
                env.update(read_env_file(params[name]))
        if params["secret_file"]:
            with open(params["secret_file"]) as handle:
                env["DJANGO_SECRET_KEY"] = handle.read().strip()
        env["VIRTUAL_ENV"] = self.venv_dir
        env["PATH"] = f"{self.venv_dir}/bin:{env.get('PATH', '/usr/bin:/bin')}"
        env.pop("PYTHONPATH", None)
        return env

    def release_command(self) -> str:
        return (read_procfile(os.path.join(self.source_dir, "Procfile")) or {}).get("release", "")

    def release(self, env: dict[str, str]) -> dict:
        """Run the Procfile's release command if the database is behind the code."""
        python = os.path.join(self.venv_dir, "bin", "python")
        command = self.release_command()
        if not manage_py(command):
            return {"ran": False}
        manage = os.path.join(self.source_dir, manage_py(command))
        check = subprocess.run(
            [python, manage, "migrate", "--check", "--noinput"],
            cwd=self.source_dir,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if check.returncode == 0:
            return {"ran": False}
        if self.module.check_mode:
            return {"ran": True, "command": command}
        # A Procfile command is a shell command line, as on the platforms.
        result = subprocess.run(  # noqa: S602
            command,
            shell=True,
            cwd=self.source_dir,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        tail = (result.stdout + result.stderr).strip().splitlines()[-15:]
        if result.returncode != 0:
            self.module.fail_json(
                msg=f"the release command `{command}` failed (exit {result.returncode}); "
                "the running dyno, if any, was left as it was",
                release_output=tail,
            )
        return {"ran": True, "command": command, "output": tail}

    def start(self, env: dict[str, str], print_: str) -> int:
        with open(self.log_file, "ab") as log:
            process = subprocess.Popen(
                [os.path.join(self.venv_dir, "bin", "python"), "bin/dyno"],
                cwd=self.source_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives Ansible and its process group
            )
        time.sleep(2)
        if process.poll() is not None:
            with open(self.log_file, errors="replace") as handle:
                tail = handle.read().splitlines()[-20:]
            self.module.fail_json(
                msg=f"the dyno exited at once (status {process.returncode}); see {self.log_file}",
                log_tail=tail,
            )
        record = {"pid": process.pid, "start_time": start_time(process.pid), "print": print_}
        temporary = f"{self.pid_file}.new"
        with open(temporary, "w") as handle:
            json.dump(record, handle)
        os.replace(temporary, self.pid_file)
        return process.pid

    def stop(self, record: dict) -> None:
        tree = process_tree(record["pid"])
        os.kill(record["pid"], signal.SIGTERM)
        deadline = time.monotonic() + self.module.params["grace_seconds"]
        while time.monotonic() < deadline and start_time(record["pid"]) == record["start_time"]:
            time.sleep(0.2)
        # Anything of ours still there after the grace period: SIGKILL, by pid,
        # and only if the pid still belongs to the process we saw.
        for pid, started in tree:
            if start_time(pid) == started:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.pid_file)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "source_dir": {"type": "path", "required": True},
            "state_dir": {"type": "path", "required": True},
            "venv_dir": {"type": "path", "required": True},
            "env_file": {"type": "path"},
            "secret_env_file": {"type": "path"},
            "secret_file": {"type": "path", "no_log": False},
            "state": {"type": "str", "choices": ["started", "stopped"], "default": "started"},
            "grace_seconds": {"type": "int", "default": 30},
        },
        required_if=[("state", "started", ["env_file", "secret_file"])],
        supports_check_mode=True,
    )
    dyno = Dyno(module)
    record = dyno.recorded()
    result = {"changed": False, "log_file": dyno.log_file}

    if module.params["state"] == "stopped":
        if record:
            if not module.check_mode:
                dyno.stop(record)
            result.update(changed=True, action="stopped")
        else:
            result.update(action="unchanged")
        module.exit_json(**result)

    for required in ("Procfile", "LocalProcfile", os.path.join("bin", "dyno")):
        if not os.path.isfile(os.path.join(dyno.source_dir, required)):
            module.fail_json(msg=f"{required} is missing from {dyno.source_dir}")
    python = os.path.join(dyno.venv_dir, "bin", "python")
    needed = [module.params["env_file"], module.params["secret_file"], python]
    needed += [module.params["secret_env_file"]] if module.params["secret_env_file"] else []
    if module.check_mode and not all(os.path.exists(path) for path in needed):
        # Earlier tasks would have created these: report what a real run would do.
        result.update(changed=True, action="restarted" if record else "started")
        module.exit_json(**result)
    try:
        env = dyno.environment()
        files = [module.params[n] for n in ("env_file", "secret_env_file", "secret_file")]
        project = os.path.dirname(manage_py(dyno.release_command()) or "app/manage.py") or "."
        print_ = fingerprint(dyno.source_dir, [f for f in files if f], project)
    except (OSError, ValueError) as exc:
        module.fail_json(msg=f"cannot read the dyno's configuration: {exc}")

    release = dyno.release(env)
    result["release"] = release
    if release["ran"]:
        result["changed"] = True

    if record and record.get("print") == print_:
        result.update(action="unchanged", pid=record["pid"])
        module.exit_json(**result)
    action = "restarted" if record else "started"
    result.update(changed=True, action=action)
    if module.check_mode:
        module.exit_json(**result)
    if record:
        dyno.stop(record)
    result["pid"] = dyno.start(env, print_)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
