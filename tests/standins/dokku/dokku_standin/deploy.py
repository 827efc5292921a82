"""Release and deploy, after Dokku's release_and_deploy, app-json and docker-local scheduler.

Release phase (builder-release): app.json `env` processing and the `scripts.dokku.predeploy`
task, then the Procfile `release` task, then the app.json `formation`. Any failing task fails
the release, and nothing of the running release changes.

Deploy phase (scheduler-deploy): start each process instance of the formation, run its
checks (app.json `healthchecks`, else Dokku's 10 s uptime check), then point nginx at the
web process. Every release's web process binds the same port here (Dokku gives each
container its own address), so the old instance stops before the new one starts; when a
new instance fails its checks the previous instances are started again, so the running
release keeps serving after a failed deploy.
"""

from __future__ import annotations

import json
import secrets
import shlex
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from . import out, proxy
from .build import base_env, load_meta, prune
from .core import Context
from .scale import get_formations, parse_tuples, update_scale
from .state import read_file, write_file
from .supervisor import (
    Instance,
    ProcessSupervisor,
    Supervisor,
    SystemdSupervisor,
    env_file_text,
)


class DeployError(Exception):
    pass


def supervisor(ctx: Context) -> Supervisor:
    if ctx.settings.supervisor == "systemd":
        return SystemdSupervisor(ctx.settings.systemd_unit_dir)
    return ProcessSupervisor(ctx.paths.standin("run"))


def app_dir(ctx: Context, app: str, build_no: int) -> Path:
    return ctx.paths.standin("apps", app, "builds", str(build_no), "app")


def process_env(ctx: Context, app: str, build_no: int, dyno: str) -> dict[str, str]:
    """The environment of a process: the app's config, then what the platform provides."""
    directory = app_dir(ctx, app, build_no)
    env = base_env(ctx)
    env.update(ctx.merged_env(app))
    env.update(
        {
            "PORT": str(ctx.settings.port),
            "DYNO": dyno,
            "HOME": str(directory),
            # The buildpack's profile.d puts the app's Python first, whatever the config says.
            "PATH": f"{directory / '.venv' / 'bin'}:{base_env(ctx)['PATH']}",
            "PYTHONUNBUFFERED": "true",
        }
    )
    # A real container binds 0.0.0.0 in its own network namespace; stand-in processes
    # share the test machine's network, so they stay on loopback unless the config says.
    env.setdefault("BIND_HOST", "127.0.0.1")
    return env


# -- release phase --------------------------------------------------------------------------


def process_app_json_env(ctx: Context, app: str, meta: dict) -> None:
    """app-json's processAppJSONEnv (Dokku 0.38): set app.json env vars on first deploy."""
    env_spec = meta.get("app_json", {}).get("env") or {}
    if not env_spec:
        return
    out.info1("Processing app.json env vars")
    first_deploy = not ctx.is_deployed(app)
    processed = ctx.props.get("app-json", app, "appjson-env-processed") == "executed"
    current = ctx.load_env(app)
    to_set: dict[str, str] = {}
    for name in sorted(env_spec):
        spec = env_spec[name]
        if isinstance(spec, str):
            spec = {"value": spec}
        sync = bool(spec.get("sync"))
        if not ((first_deploy and not processed) or sync):
            continue
        has_value = bool(current.get(name))
        if has_value and not sync:
            continue
        if spec.get("generator") == "secret":
            value = secrets.token_hex(32)
        elif spec.get("value"):
            value = str(spec["value"])
        else:
            if spec.get("required", True):
                raise DeployError(
                    f"required env var {name} has no value, no default, and no TTY for prompt"
                )
            continue
        to_set[name] = value
    if not to_set:
        out.verbose("No env vars to set from app.json")
        if not first_deploy:
            ctx.props.set("app-json", app, "appjson-env-processed", "executed")
        return
    out.info1(f"Setting {len(to_set)} env var(s) from app.json")
    from .configcmd import set_many

    set_many(ctx, app, to_set, restart=False)
    ctx.props.set("app-json", app, "appjson-env-processed", "executed")


def execute_task(ctx: Context, app: str, build_no: int, meta: dict, phase: str) -> None:
    out.info1(f"Checking for {phase} task")
    scripts = meta.get("app_json", {}).get("scripts") or {}
    if phase == "release":
        command, source = meta.get("processes", {}).get("release", ""), "Procfile"
    elif phase == "heroku.postdeploy":
        command, source = scripts.get("postdeploy", ""), "app.json"
    else:
        command, source = (scripts.get("dokku") or {}).get(phase, ""), "app.json"
    if not command:
        out.verbose(f"No {phase} task found, skipping")
        return
    where = "" if phase == "predeploy" else " in ephemeral container"
    out.verbose(f"Executing {phase} task from {source}{where}: {command}")
    directory = app_dir(ctx, app, build_no)
    env = process_env(ctx, app, build_no, f"{phase}.1")
    args = ["/bin/bash", "-c", command]
    user = ctx.settings.app_user
    if user and phase != "predeploy":  # predeploy changes are committed into the image
        args = ["runuser", "-u", user, "--", *args]
    result = subprocess.run(args, cwd=directory, env=env, capture_output=True, check=False)
    task_id = secrets.token_hex(5)[:9]
    out.info2_quiet(f"Start of {app} {phase} task ({task_id}) output")
    if not out.quiet():
        out.stream_verbose(result.stdout + result.stderr)
    out.info2_quiet(f"End of {app} {phase} task ({task_id}) output")
    if result.returncode != 0:
        raise DeployError(f"Execution of {phase} task failed: {command}")


def set_scale_from_app_json(ctx: Context, app: str, meta: dict) -> None:
    formation = meta.get("app_json", {}).get("formation") or {}
    tuples = [
        f"{name}={spec['quantity']}"
        for name, spec in formation.items()
        if isinstance(spec, dict) and spec.get("quantity") is not None
    ]
    valid = set(meta.get("processes", {})) - {"release"}
    if not tuples:
        ctx.props.set("ps", app, "can-scale", "true")
        update_scale(ctx, app, [], valid=valid)
        return
    ctx.props.set("ps", app, "can-scale", "false")
    update_scale(ctx, app, parse_tuples(tuples), clear_existing=True, valid=valid)


def release(ctx: Context, app: str, build_no: int) -> None:
    meta = load_meta(ctx, app, build_no)
    process_app_json_env(ctx, app, meta)
    execute_task(ctx, app, build_no, meta, "predeploy")
    execute_task(ctx, app, build_no, meta, "release")
    set_scale_from_app_json(ctx, app, meta)
    if ctx.is_deployed(app):
        return
    if ctx.props.get("app-json", app, "heroku.postdeploy") == "executed":
        return
    ctx.props.set("app-json", app, "heroku.postdeploy", "executed")
    execute_task(ctx, app, build_no, meta, "heroku.postdeploy")


def release_and_deploy(ctx: Context, app: str, build_no: int) -> int:
    """common release_and_deploy: returns the exit code."""
    code = 0
    out.info1(f"Releasing {app}...")
    try:
        release(ctx, app, build_no)
    except DeployError as exc:
        out.warn(str(exc))
        code = 1
    if code == 0:
        out.info1(f"Deploying {app} via the docker-local scheduler...")
        try:
            deploy(ctx, app, build_no)
        except DeployError as exc:
            out.warn(str(exc))
            code = 1
        if code == 0:
            out.info2("Application deployed:")
            for url in proxy.urls(ctx, app):
                out.verbose(url)
    out.log("")
    return code


# -- deploy phase ---------------------------------------------------------------------------


def _container_file(ctx: Context, app: str, name: str) -> Path:
    proc_index = name[len(app) + 1 :]
    return ctx.paths.app(app) / f"CONTAINER.{proc_index}"


def current_instances(ctx: Context, app: str) -> dict[str, Instance]:
    deploy_id = ctx.props.get("standin", app, "deploy")
    if not deploy_id:
        return {}
    path = ctx.paths.standin("apps", app, "deploys", deploy_id, "instances.json")
    try:
        return {
            i["app"] + "." + i["process_type"] + "." + str(i["index"]): Instance(**i)
            for i in json.loads(read_file(path) or "[]")
        }
    except (ValueError, TypeError):
        return {}


def _new_deploy_dir(ctx: Context, app: str) -> tuple[str, Path]:
    base = ctx.paths.standin("apps", app, "deploys")
    base.mkdir(parents=True, exist_ok=True)
    numbers = [int(p.name) for p in base.iterdir() if p.name.isdigit()]
    number = str(max(numbers, default=0) + 1)
    (base / number).mkdir()
    return number, base / number


def _write_instance(
    ctx: Context, app: str, build_no: int, deploy_dir: Path, proc: str, index: int, command: str
) -> Instance:
    dyno = f"{proc}.{index}"
    directory = app_dir(ctx, app, build_no)
    script = deploy_dir / f"{dyno}.sh"
    write_file(
        script,
        "#!/bin/bash\n"
        f"# Dokku STAND-IN process {app} {dyno} (build {build_no}): the Procfile command.\n"
        f"cd {shlex.quote(str(directory))}\n"
        f"exec /bin/bash -c {shlex.quote(command)}\n",
        0o755,
    )
    env_file = deploy_dir / f"{dyno}.env"
    write_file(env_file, env_file_text(process_env(ctx, app, build_no, dyno)), 0o600)
    return Instance(
        app=app,
        process_type=proc,
        index=index,
        script=str(script),
        env_file=str(env_file),
        cwd=str(directory),
        user=ctx.settings.app_user,
        stop_timeout=int(
            ctx.props.get("ps", app, "stop-timeout-seconds") or ctx.settings.stop_timeout
        ),
        description=f"Dokku stand-in app {app} process {dyno} (build {build_no})",
    )


def _http_check(url: str, headers: dict[str, str], timeout: int, content: str) -> str | None:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        return f"unexpected status code: {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f'Get "{url}": {reason}'
    if not 200 <= status < 300:
        return f"unexpected status code: {status}"
    if content and content.encode() not in body:
        return f"unable to find expected content in response body: {content}"
    return None


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def run_checks(
    ctx: Context, app: str, inst: Instance, meta: dict, sup: Supervisor, env: dict[str, str]
) -> int:
    """docker-container-healthchecker, as Dokku's check-deploy calls it; returns failures."""
    proc = inst.process_type
    checks = list((meta.get("app_json", {}).get("healthchecks") or {}).get(proc) or [])
    if not checks:
        checks = [
            {"name": "default", "type": "startup", "uptime": ctx.settings.checks_default_wait}
        ]
    if proc == "web":
        checks.append(
            {
                "name": "port listening check",
                "listening": True,
                "port": ctx.settings.port,
                "warn": True,
            }
        )
    headers = {"Accept": "*/*"}
    vhosts = [v for v in ctx.app_vhosts(app) if v not in ("localhost", "*")]
    if vhosts and ctx.vhost_enabled(app):
        headers["Host"] = vhosts[0]
    failures = 0
    for check in checks:
        name = check.get("name") or "healthcheck"
        attempts = int(check.get("attempts") or 3)
        timeout = int(check.get("timeout") or 5)
        wait = int(check.get("wait") or 5)
        port = int(check.get("port") or ctx.settings.port)
        error = None
        if check.get("listening"):
            out.verbose(
                f"Running healthcheck name='{name}' attempts={attempts} port={port}"
                f" retries={attempts - 1} timeout={timeout} type='listening' wait={wait}"
            )
            for attempt in range(attempts):
                error = None if _listening(port) else f"nothing listens on port {port}"
                if error is None:
                    break
                if attempt + 1 < attempts:
                    time.sleep(wait)
        elif check.get("path"):
            path = check["path"]
            delay = int(check.get("initialDelay") or 0)
            out.verbose(
                f"Running healthcheck name='{name}' delay={delay} path='{path}'"
                f" retries={attempts - 1} timeout={timeout} type='path'"
            )
            time.sleep(delay)
            extra = {h.get("name", ""): h.get("value", "") for h in check.get("httpHeaders") or []}
            for attempt in range(attempts):
                status = sup.status(inst.name)
                if status.state == "exited":
                    error = f"Container state: {status.state}"
                    break
                error = _http_check(
                    f"http://127.0.0.1:{port}{path}",
                    {**headers, **extra},
                    timeout,
                    check.get("content", ""),
                )
                if error is None:
                    break
                if attempt + 1 < attempts:
                    time.sleep(wait)
        elif check.get("command"):
            command = check["command"]
            command = command if isinstance(command, list) else [command]
            out.verbose(
                f"Running healthcheck name='{name}' attempts={attempts}"
                f" command='{command}' timeout={timeout} type='command' wait={wait}"
            )
            for attempt in range(attempts):
                result = subprocess.run(
                    ["/bin/bash", "-c", " ".join(command)],
                    cwd=inst.cwd,
                    env=env,
                    capture_output=True,
                    check=False,
                )
                error = None if result.returncode == 0 else f"exit code {result.returncode}"
                if error is None:
                    break
                if attempt + 1 < attempts:
                    time.sleep(wait)
        else:
            uptime = int(check.get("uptime") or 0)
            out.verbose(f"Running healthcheck name='{name}' type='uptime' uptime={uptime}")
            time.sleep(uptime)
            status = sup.status(inst.name)
            if not status.active:
                error = f"container state: {status.state}"
            elif status.restarts:
                error = f"container has restarted {status.restarts} times"
        if error is None:
            out.verbose(f"Healthcheck succeeded name='{name}'")
        else:
            out.verbose(f"Failure in name='{name}': {error}")
            if not check.get("warn"):
                failures += 1
    return failures


def _show_output(app: str, inst: Instance, sup: Supervisor, cid: str) -> None:
    out.info2_quiet(
        f"Start of {app} container output ({cid[:12]} {inst.process_type}.{inst.index})"
    )
    if not out.quiet():
        for _, line in sup.log_lines(inst.name, 200):
            out.verbose(line)
    out.info2_quiet(f"End of {app} container output ({cid[:12]} {inst.process_type}.{inst.index})")


def deploy(ctx: Context, app: str, build_no: int, only_type: str | None = None) -> None:
    """scheduler-docker-local deploy: start the formation, check it, switch the proxy."""
    meta = load_meta(ctx, app, build_no)
    processes = {k: v for k, v in meta.get("processes", {}).items() if k != "release"}
    formation = [(n, q) for n, q in get_formations(ctx, app) if n in processes]
    web_qty = dict(formation).get("web", 0)
    if web_qty > 1:
        raise DeployError(
            f"The Dokku stand-in runs at most one web process per app (all share port"
            f" {ctx.settings.port}); scale web to 1"
        )
    sup = supervisor(ctx)
    previous = current_instances(ctx, app)
    deploy_id, deploy_dir = _new_deploy_dir(ctx, app)
    wanted: dict[str, Instance] = {}
    replaced: list[tuple[str, Instance | None, str]] = []  # name, old instance, old CID

    def rollback() -> None:
        for name, old, old_cid in reversed(replaced):
            if old is not None:
                sup.start(old)
                write_file(_container_file(ctx, app, name), old_cid + "\n")
            else:
                sup.remove(name)
                _container_file(ctx, app, name).unlink(missing_ok=True)
        shutil.rmtree(deploy_dir, ignore_errors=True)

    # web first: it is the one the proxy and the checks care about
    ordered = sorted(formation, key=lambda item: (item[0] != "web", item[0]))
    for proc, qty in ordered:
        if only_type and proc != only_type:
            for index in range(1, qty + 1):
                name = f"{app}.{proc}.{index}"
                if name in previous:
                    wanted[name] = previous[name]
            continue
        if qty <= 0:
            continue
        out.info1(f"Deploying {proc} (count={qty})")
        for index in range(1, qty + 1):
            inst = _write_instance(ctx, app, build_no, deploy_dir, proc, index, processes[proc])
            name = inst.name
            old_cid = read_file(_container_file(ctx, app, name)).strip()
            replaced.append((name, previous.get(name), old_cid))
            cid = secrets.token_hex(32)
            sup.start(inst)
            write_file(_container_file(ctx, app, name), cid + "\n")
            out.verbose(f"Attempting pre-flight checks ({proc}.{index})")
            env = process_env(ctx, app, build_no, f"{proc}.{index}")
            failures = run_checks(ctx, app, inst, meta, sup, env)
            if failures:
                _show_output(app, inst, sup, cid)
                sup.stop(name, inst.stop_timeout)
                out.warn(f"Could not start due to {failures} failed checks ({proc}.{index})")
                rollback()
                raise DeployError(f"Deploy of {app} failed: the previous release keeps running")
            out.verbose(f"All checks successful ({proc}.{index})")
            wanted[name] = inst

    for name in sorted(set(previous) - set(wanted)):
        if only_type and not name.startswith(f"{app}.{only_type}."):
            continue
        sup.remove(name)
        _container_file(ctx, app, name).unlink(missing_ok=True)

    write_file(
        deploy_dir / "instances.json",
        json.dumps([vars(i) for i in wanted.values()], indent=2),
    )
    ctx.props.set("standin", app, "deploy", deploy_id)
    ctx.props.set("standin", app, "build", str(build_no))
    ctx.props.set("common", app, "deployed", "true")
    ctx.props.set("ps", app, "restore", "true")
    out.info1("Running post-deploy")
    proxy.configure(ctx, app, web_running=any(i.process_type == "web" for i in wanted.values()))
    execute_task(ctx, app, build_no, meta, "postdeploy")
    _prune_deploys(ctx, app, keep={deploy_id})
    prune(ctx, app, keep={build_no})


def _prune_deploys(ctx: Context, app: str, keep: set[str]) -> None:
    base = ctx.paths.standin("apps", app, "deploys")
    numbers = sorted((int(p.name) for p in base.iterdir() if p.name.isdigit()), reverse=True)
    for number in numbers[ctx.settings.releases_kept :]:
        if str(number) not in keep:
            shutil.rmtree(base / str(number), ignore_errors=True)


def stop_app(ctx: Context, app: str) -> None:
    sup = supervisor(ctx)
    for name, inst in current_instances(ctx, app).items():
        out.verbose(f"Stopping {name}")
        sup.stop(name, inst.stop_timeout)


def remove_app(ctx: Context, app: str) -> None:
    sup = supervisor(ctx)
    for name in current_instances(ctx, app):
        sup.remove(name)
    shutil.rmtree(ctx.paths.standin("apps", app), ignore_errors=True)


def running_state(ctx: Context, app: str) -> tuple[int, str]:
    """scheduler-app-status: (process count, "true" | "false" | "mixed")."""
    sup = supervisor(ctx)
    instances = current_instances(ctx, app)
    running = sum(1 for name in instances if sup.status(name).active)
    if not instances or running == 0:
        return len(instances), "false"
    return len(instances), "true" if running == len(instances) else "mixed"


def formation_tuples(ctx: Context, app: str) -> list[tuple[str, int]]:
    return get_formations(ctx, app)
