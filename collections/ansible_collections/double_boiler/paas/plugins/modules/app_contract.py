#!/usr/bin/python
# Copyright: (c) double-boiler contributors
# BSD-2-Clause (see LICENSE)
"""Check that an app checkout follows the two-Procfile contract; change nothing."""

from __future__ import annotations

DOCUMENTATION = r"""
module: app_contract
short_description: Check that an app checkout follows the two-Procfile contract
description:
  - Reads the checkout at O(path) and reports, all at once, every piece of the contract the
    deploy roles rely on that is missing, each with what to do about it. It never changes
    anything and always reports C(changed=false).
  - "The contract: an outer C(Procfile) whose C(web) runs C(bin/dyno) (honcho on the inner
    layer) and whose C(release) runs C(manage.py migrate); a C(LocalProcfile) with C(web)
    (Gunicorn) and C(worker) (Celery); C(bin/dyno) executable; C(gunicorn.conf.py);
    C(requirements.txt) naming C(honcho), C(gunicorn), C(celery) and C(Django) (and C(gevent)
    when C(gunicorn.conf.py) asks for gevent workers); a C(.python-version) (or the deprecated
    C(runtime.txt)) for the Python buildpack; a valid C(app.json) when there is one."
  - With O(git_tracked=true) the contract's files must also be tracked by git, with
    C(bin/dyno) recorded as executable, since the source archive the Heroku and Dokku roles
    upload holds only git-tracked files, with git's modes.
  - Runs on the controller (the checkout is there); use C(delegate_to) otherwise.
options:
  path:
    description: The app checkout (the directory that holds C(Procfile)).
    type: path
    required: true
  mode:
    description:
      - C(one-dyno) needs only the outer C(web) process; C(split) also needs
        C(worker) running C(bin/dyno worker) (Celery in its own dyno).
    type: str
    choices: [one-dyno, split]
    default: one-dyno
  git_tracked:
    description:
      - Also require the contract's files to be tracked by git (what the Heroku and Dokku roles
        deploy). The embedded local target runs the checkout as it is and can pass V(false).
    type: bool
    default: true
  fail_on_problems:
    description:
      - Fail when something is missing. V(false) returns the problems in RV(problems) so that a
        role can list them together with its other input checks in one failure.
    type: bool
    default: true
extends_documentation_fragment:
  - double_boiler.paas.attributes
attributes:
  check_mode:
    support: full
    details: The module only reads; check mode changes nothing.
  diff_mode:
    support: none
    details: Nothing is ever changed, so there is nothing to diff.
notes:
  - "Sources: the Python buildpack reads C(requirements.txt) and C(.python-version) at the
    root (C(runtime.txt) is deprecated: U(https://devcenter.heroku.com/changelog-items/3141));
    the C(release) process type runs before a release goes live
    (U(https://devcenter.heroku.com/articles/release-phase)); Dokku's herokuish builder uses the
    same buildpack and reads the same C(Procfile) (U(https://dokku.com/docs/processes/process-management/))."
author:
  - double-boiler contributors (@double-boiler)
"""

EXAMPLES = r"""
- name: Check the app follows the two-Procfile contract
  double_boiler.paas.app_contract:
    path: "{{ heroku_app_source_dir }}"
    mode: "{{ heroku_app_mode }}"
  delegate_to: localhost

- name: Collect the problems with the other input checks, fail once
  double_boiler.paas.app_contract:
    path: "{{ local_app_source_dir }}"
    git_tracked: false
    fail_on_problems: false
  register: local_app__contract
"""

RETURN = r"""
problems:
  description: What is missing or wrong, each with what to do; empty when the contract holds.
  type: list
  elements: str
  returned: always
  sample:
    - "Procfile has no web process: add `web: bin/dyno`."
processes:
  description: The outer C(Procfile)'s process types and commands.
  type: dict
  returned: always
  sample: {"release": "python app/manage.py migrate --noinput", "web": "bin/dyno"}
local_processes:
  description: The inner C(LocalProcfile)'s process types and commands.
  type: dict
  returned: always
  sample:
    web: exec gunicorn --config gunicorn.conf.py
    worker: exec celery --app proj worker
manage_py:
  description: The C(manage.py) the C(release) command runs, relative to O(path); null when none.
  type: str
  returned: always
  sample: app/manage.py
python_version:
  description: The Python version C(.python-version) (or C(runtime.txt)) asks for; null when none.
  type: str
  returned: always
  sample: "3.11"
"""

import json
import os
import re
import subprocess

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.double_boiler.paas.plugins.module_utils.procfile import (
    command_words,
    manage_py,
    read_procfile,
)

OUTER_LAYER = {"bin/dyno", "./bin/dyno"}
PYTHONS = {"python", "python3"}
# What the deploy roles need installed in the app's own environment, and why.
RUNTIME_REQUIREMENTS = {
    "honcho": "bin/dyno imports honcho to run the LocalProcfile",
    "gunicorn": "the LocalProcfile's web process is Gunicorn",
    "celery": "the LocalProcfile's worker process is Celery",
    "django": "release runs manage.py migrate",
}
PYTHON_VERSION = re.compile(r"^(?:python-)?(3\.\d+(?:\.\d+)?)$")
CONTRACT_FILES = ("Procfile", "LocalProcfile", "bin/dyno", "gunicorn.conf.py", "requirements.txt")


def runs_outer_layer(command: str, *args: str) -> bool:
    argv = command_words(command)
    if argv[:1] and os.path.basename(argv[0]) in PYTHONS:
        argv = argv[1:]
    return bool(argv) and argv[0] in OUTER_LAYER and argv[1:] == list(args)


def requirement_names(path: str) -> set[str] | None:
    """Normalised project names (PEP 503) in a requirements file, `-r` includes followed."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    names: set[str] = set()
    for raw in lines:
        line = raw.split(" #", 1)[0].strip()
        if line.startswith(("-r ", "--requirement ")):
            included = requirement_names(
                os.path.join(os.path.dirname(path), line.split(None, 1)[1])
            )
            names |= included or set()
            continue
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)", line)
        if match:
            names.add(re.sub(r"[-_.]+", "-", match.group(1)).lower())
        extras = re.match(r"^[A-Za-z0-9._-]+\[([^]]+)\]", line)
        if extras and match and match.group(1).lower() == "gunicorn":
            names |= {f"gunicorn[{e.strip().lower()}]" for e in extras.group(1).split(",")}
    return names


def git_files(module: AnsibleModule, path: str) -> dict[str, str] | None:
    """Tracked files under path and their git modes; None when path is not in a work tree."""
    git = module.get_bin_path("git")
    if git is None:
        return None
    result = subprocess.run(
        [git, "-C", path, "ls-files", "--stage", "-z", "--", "."],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        return None
    tracked = {}
    for entry in result.stdout.split("\0"):
        if "\t" in entry:
            meta, name = entry.split("\t", 1)
            tracked[name] = meta.split()[0]
    return tracked


def check(module: AnsibleModule, path: str, mode: str, git_tracked: bool) -> dict:
    problems: list[str] = []
    result = {"processes": {}, "local_processes": {}, "manage_py": None, "python_version": None}

    def at(name: str) -> str:
        return os.path.join(path, name)

    if not os.path.isdir(path):
        problems.append(f"{path} is not a directory: give the app checkout (it holds Procfile).")
        return {**result, "problems": problems}

    # -- outer layer: what the platform runs ---------------------------------------------
    outer = read_procfile(at("Procfile"))
    if outer is None:
        problems.append(
            "Procfile is missing: add one with `web: bin/dyno` and"
            " `release: python <dir>/manage.py migrate --noinput`."
        )
        outer = {}
    result["processes"] = outer
    if outer and "web" not in outer:
        problems.append("Procfile has no web process: add `web: bin/dyno`.")
    elif outer and not runs_outer_layer(outer["web"]):
        problems.append(
            f"Procfile: its web process runs `{outer['web']}`, not the outer layer:"
            " write `web: bin/dyno` (Gunicorn and Celery go in LocalProcfile)."
        )
    if mode == "split" and outer and not runs_outer_layer(outer.get("worker", ""), "worker"):
        problems.append(
            "Procfile: split mode runs Celery in its own process type:"
            " add `worker: bin/dyno worker`."
        )
    release = command_words(outer.get("release", ""))
    manage = manage_py(outer.get("release", ""))
    if outer and (manage is None or "migrate" not in release):
        problems.append(
            "Procfile: no release process running migrations: add"
            " `release: python <dir>/manage.py migrate --noinput` (the platforms run it before"
            " each release goes live)."
        )
    elif manage is not None:
        result["manage_py"] = os.path.normpath(manage)
        if not os.path.isfile(at(manage)):
            problems.append(f"Procfile: release runs {manage}, which is not in the checkout.")

    # -- inner layer: what bin/dyno runs inside one dyno ------------------------------------
    inner = read_procfile(at("LocalProcfile"))
    if inner is None:
        problems.append(
            "LocalProcfile is missing: add `web: exec gunicorn --config gunicorn.conf.py` and"
            " `worker: exec celery --app <project> worker`."
        )
        inner = {}
    result["local_processes"] = inner
    if inner:
        if "gunicorn" not in command_words(inner.get("web", ""))[:1]:
            problems.append(
                "LocalProcfile: web must run Gunicorn:"
                " `web: exec gunicorn --config gunicorn.conf.py`."
            )
        worker = command_words(inner.get("worker", ""))
        if worker[:1] != ["celery"] or "worker" not in worker:
            problems.append(
                "LocalProcfile: worker must run a Celery worker:"
                " `worker: exec celery --app <project> worker`."
            )

    # -- the files to copy -------------------------------------------------------------------
    dyno = at("bin/dyno")
    if not os.path.isfile(dyno):
        problems.append("bin/dyno is missing: copy it from double-boiler (the outer layer).")
    elif not os.access(dyno, os.X_OK):
        problems.append("bin/dyno is not executable: run `chmod +x bin/dyno`.")
    gevent = False
    try:
        with open(at("gunicorn.conf.py"), encoding="utf-8") as handle:
            gevent = "gevent" in handle.read()
    except (OSError, UnicodeDecodeError):
        problems.append(
            "gunicorn.conf.py is missing: copy it from double-boiler and set its"
            " pythonpath and wsgi_app to your project."
        )

    # -- what the buildpack installs -------------------------------------------------------
    names = requirement_names(at("requirements.txt"))
    if names is None:
        problems.append(
            "requirements.txt is missing: pin the runtime dependencies there (the Python"
            " buildpack installs it), honcho, gunicorn, celery and Django included."
        )
    else:
        wanted = dict(RUNTIME_REQUIREMENTS)
        if gevent:
            wanted["gevent"] = "gunicorn.conf.py asks for gevent workers"
        for name, why in wanted.items():
            if name not in names and not (name == "gevent" and "gunicorn[gevent]" in names):
                problems.append(f"requirements.txt does not name {name}: add it ({why}).")

    for name in (".python-version", "runtime.txt"):
        try:
            with open(at(name), encoding="utf-8") as handle:
                text = handle.read().strip()
        except (OSError, UnicodeDecodeError):
            continue
        match = PYTHON_VERSION.match(text)
        if match is None:
            problems.append(f"{name} holds {text!r}: write a Python version such as 3.11.")
        else:
            result["python_version"] = match.group(1)
        break
    else:
        problems.append(
            ".python-version is missing: write the Python version the app runs on, such as"
            " 3.11 (the buildpack's choice would change under you)."
        )

    if os.path.exists(at("app.json")):
        try:
            with open(at("app.json"), encoding="utf-8") as handle:
                manifest = json.load(handle)
            if not isinstance(manifest, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            problems.append(
                f"app.json is not a valid JSON object ({exc}): fix it or remove it"
                " (Dokku reads its healthchecks)."
            )

    # -- what the platforms receive: git-tracked files only --------------------------------
    if git_tracked:
        tracked = git_files(module, path)
        if tracked is None:
            problems.append(
                f"{path} is not in a git work tree: the Heroku and Dokku roles deploy"
                " git-tracked files only; run `git init` and commit the app."
            )
        else:
            wanted = [*CONTRACT_FILES, result["manage_py"]]
            untracked = [f for f in wanted if f and os.path.exists(at(f)) and f not in tracked]
            if untracked:
                problems.append(
                    f"not tracked by git, so never deployed: {', '.join(untracked)}:"
                    " `git add` and commit them."
                )
            if tracked.get("bin/dyno", "100755") != "100755":
                problems.append(
                    "git records bin/dyno as not executable: run"
                    " `git update-index --chmod=+x bin/dyno` and commit."
                )
    return {**result, "problems": problems}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "mode": {"type": "str", "choices": ["one-dyno", "split"], "default": "one-dyno"},
            "git_tracked": {"type": "bool", "default": True},
            "fail_on_problems": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    params = module.params
    path = os.path.abspath(params["path"])
    result = check(module, path, params["mode"], params["git_tracked"])
    if result["problems"] and params["fail_on_problems"]:
        listed = " ".join(f"({n}) {p}" for n, p in enumerate(result["problems"], 1))
        module.fail_json(
            msg=f"{path} does not follow the two-Procfile contract: {listed}",
            changed=False,
            **result,
        )
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
