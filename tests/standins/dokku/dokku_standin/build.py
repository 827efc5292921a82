"""Build a release "the way a buildpack would" (Dokku's default herokuish builder).

The stand-in's "image" is a directory: the app's source at the deployed git commit plus a
virtualenv made with the VM's python3 from requirements.txt (the Heroku Python buildpack's
contract), then Django's collectstatic when Django is installed, as the buildpack does.
A virtualenv is shared by every build with the same requirements and Python (the buildpack
restores its cache in the same situation); it is never modified once built.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

from . import out
from .core import Context
from .state import write_file

PROCFILE_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")


class BuildError(Exception):
    pass


def parse_procfile(text: str) -> dict[str, str]:
    """Procfile in procfile-util's strict mode: `<type>: <command>` lines, no duplicates."""
    processes: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = PROCFILE_LINE.match(line)
        if not match:
            raise BuildError(f"Procfile line {number} is invalid: {raw!r}")
        name, command = match.group(1), match.group(2).strip()
        if name in processes:
            raise BuildError(f"Procfile declares process type {name!r} twice")
        processes[name] = command
    return processes


def read_app_json(app_dir: Path) -> dict:
    path = app_dir / "app.json"
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise BuildError(f"app.json is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BuildError("app.json must hold a JSON object")
    return data


def checkout(ctx: Context, app: str, rev: str, dest: Path) -> None:
    """The source tree at `rev` (git archive of the app's repository)."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(ctx.paths.app(app)), "archive", "--format=tar", rev],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        raise BuildError(f"Cannot read commit {rev}: {archive.stderr.decode().strip()}")
    tmp = dest.parent / f".{dest.name}.tar"
    tmp.write_bytes(archive.stdout)
    with tarfile.open(tmp) as tar:
        if hasattr(tarfile, "tar_filter"):
            tar.extractall(dest, filter="tar")
        else:
            tar.extractall(dest)  # noqa: S202 - our own git archive output
    tmp.unlink()


def python_version(python: str) -> str:
    result = subprocess.run(
        [python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def requested_python(app_dir: Path) -> str | None:
    pv = app_dir / ".python-version"
    if pv.exists():
        for line in pv.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                return line
    runtime = app_dir / "runtime.txt"
    if runtime.exists():
        text = runtime.read_text().strip()
        if text.startswith("python-"):
            return text[len("python-") :]
    return None


def run_logged(args: list[str], *, cwd: Path, env: dict[str, str], user: str = "") -> int:
    """Run a build step, showing its output indented like buildpack output."""
    if user and os.geteuid() == 0:
        args = ["runuser", "-u", user, "--", *args]
    proc = subprocess.Popen(
        args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip():
            out.verbose(line.rstrip())
    return proc.wait()


def base_env(ctx: Context) -> dict[str, str]:
    return {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",
    }


def build(ctx: Context, app: str, rev: str) -> int:
    """Build `rev` of `app`; return the build number. Raises BuildError."""
    builds = ctx.paths.standin("apps", app, "builds")
    builds.mkdir(parents=True, exist_ok=True)
    numbers = [int(p.name) for p in builds.iterdir() if p.name.isdigit()]
    number = max(numbers, default=0) + 1
    build_dir = builds / str(number)
    app_dir = build_dir / "app"
    out.info1("Cleaning up...")
    out.info1(f"Building {app} from herokuish")
    try:
        checkout(ctx, app, rev, app_dir)
        processes = {}
        if (app_dir / "Procfile").exists():
            processes = parse_procfile((app_dir / "Procfile").read_text(encoding="utf-8"))
        app_json = read_app_json(app_dir)
        venv = build_python(ctx, app, app_dir)
        os.symlink(venv, app_dir / ".venv")
        collectstatic(ctx, app, app_dir)
    except BuildError:
        shutil.rmtree(build_dir, ignore_errors=True)
        raise
    out.info1("Discovering process types")
    if processes:
        out.verbose(f"Procfile declares types -> {', '.join(processes)}")
    else:
        out.verbose("No Procfile found: this stand-in only runs Procfile process types")
    write_file(
        build_dir / "meta.json",
        json.dumps(
            {
                "rev": rev,
                "venv": str(venv),
                "processes": processes,
                "app_json": app_json,
                "created": time.time(),
            },
            indent=2,
        ),
    )
    # The app runs as an unprivileged user: it must read (not write) its build.
    subprocess.run(["chmod", "-R", "a+rX", str(build_dir), str(venv)], check=True)
    return number


def build_python(ctx: Context, app: str, app_dir: Path) -> Path:
    settings = ctx.settings
    markers = [
        m
        for m in ("requirements.txt", "Pipfile.lock", "poetry.lock", "uv.lock")
        if (app_dir / m).exists()
    ]
    if not markers:
        raise BuildError(
            "Unable to select a buildpack: the stand-in only builds Python apps"
            " (no requirements.txt found)"
        )
    if markers[0] != "requirements.txt":
        raise BuildError(f"The stand-in only installs requirements.txt, not {markers[0]}")
    out.info1("Python app detected")
    have = python_version(settings.python)
    wanted = requested_python(app_dir)
    if wanted:
        if not (have == wanted or have.startswith(wanted + ".")):
            raise BuildError(
                f"The requested Python version ({wanted}) is not available: this stand-in"
                f" builds with the VM's python3, which is {have}"
            )
        out.info1(f"Using Python {wanted} specified in .python-version ({have})")
    else:
        out.info1(f"Using Python {have}")
    requirements = (app_dir / "requirements.txt").read_bytes()
    key = hashlib.sha256(have.encode() + b"\0" + requirements).hexdigest()[:16]
    venvs = ctx.paths.standin("apps", app, "venvs")
    venv = venvs / key
    if (venv / ".complete").exists():
        out.info1("Restoring cache")
        out.verbose("requirements.txt is unchanged: reusing the installed packages")
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    venvs.mkdir(parents=True, exist_ok=True)
    out.info1("Installing requirements with pip")
    env = base_env(ctx)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_CACHE_DIR"] = settings.pip_cache_dir
    if os.path.exists("/etc/ssl/certs/ca-certificates.crt"):
        # The system bundle (with any proxy CA of the machine), not pip's own certifi copy.
        env["PIP_CERT"] = "/etc/ssl/certs/ca-certificates.crt"
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_CERT"):
        if name in os.environ:
            env[name] = os.environ[name]
    if run_logged([settings.python, "-m", "venv", str(venv)], cwd=app_dir, env=env) != 0:
        raise BuildError("Creating the virtualenv failed")
    pip = [
        str(venv / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "--progress-bar",
        "off",
        "-r",
        "requirements.txt",
        *settings.pip_extra_args,
    ]
    if run_logged(pip, cwd=app_dir, env=env) != 0:
        shutil.rmtree(venv, ignore_errors=True)
        raise BuildError("Failed to install requirements with pip")
    (venv / ".complete").write_text("")
    return venv


def find_manage_py(app_dir: Path) -> Path | None:
    found = []
    for path in app_dir.rglob("manage.py"):
        depth = len(path.relative_to(app_dir).parts)
        if depth <= 3 and path.is_file():
            found.append((depth, str(path.relative_to(app_dir))))
    return app_dir / sorted(found)[0][1] if found else None


def collectstatic(ctx: Context, app: str, app_dir: Path) -> None:
    env = base_env(ctx)
    env.update(ctx.merged_env(app))
    if env.get("DISABLE_COLLECTSTATIC") not in (None, "", "0"):
        return
    python = str(app_dir / ".venv" / "bin" / "python")
    has_django = (
        subprocess.run([python, "-c", "import django"], capture_output=True, check=False).returncode
        == 0
    )
    manage = find_manage_py(app_dir)
    if not has_django or manage is None:
        return
    rel = manage.relative_to(app_dir)
    out.info1(f"$ python {rel} collectstatic --noinput")
    env["PATH"] = f"{app_dir / '.venv' / 'bin'}:{env['PATH']}"
    code = run_logged([python, str(rel), "collectstatic", "--noinput"], cwd=app_dir, env=env)
    if code != 0:
        out.stderr(
            " !     Error while running '$ python " + str(rel) + " collectstatic --noinput'."
        )
        out.stderr(" !     See traceback above for details.")
        raise BuildError("Unable to generate Django static files")


def prune(ctx: Context, app: str, keep: set[int]) -> None:
    """Drop old builds and the virtualenvs no kept build uses."""
    builds = ctx.paths.standin("apps", app, "builds")
    if not builds.is_dir():
        return
    numbers = sorted((int(p.name) for p in builds.iterdir() if p.name.isdigit()), reverse=True)
    keep = keep | set(numbers[: ctx.settings.releases_kept])
    used: set[str] = set()
    for number in numbers:
        path = builds / str(number)
        if number in keep:
            with contextlib.suppress(OSError, ValueError, KeyError):
                used.add(json.loads((path / "meta.json").read_text())["venv"])
        else:
            shutil.rmtree(path, ignore_errors=True)
    venvs = ctx.paths.standin("apps", app, "venvs")
    if venvs.is_dir():
        for venv in venvs.iterdir():
            if str(venv) not in used:
                shutil.rmtree(venv, ignore_errors=True)


def load_meta(ctx: Context, app: str, number: int) -> dict:
    path = ctx.paths.standin("apps", app, "builds", str(number), "meta.json")
    return json.loads(path.read_text())
