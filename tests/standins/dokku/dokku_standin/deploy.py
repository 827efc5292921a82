"""Release and deploy, after Dokku's release_and_deploy, app-json and docker-local scheduler.

Release phase (builder-release): app.json `env` processing and the `scripts.dokku.predeploy`
task, then the Procfile `release` task, then the app.json `formation`. Any failing task fails
the release, and nothing of the running release changes.

Deploy phase (dokku/dokku plugins/scheduler-docker-local/scheduler-deploy and
bin/scheduler-deploy-process-container): start a new container for each process instance
of the formation, web first, while the old ones keep serving; run its checks
(plugins/scheduler-docker-local/check-deploy); once every new container passed, point nginx
at the new web containers (post-deploy), send the old containers SIGTERM at once and stop
and remove them `wait-to-retire` seconds later (plugins/checks/internal-functions: default
60). A container that fails its checks is stopped and the deploy fails: nothing of the
running release changes. Each container has its own loopback address (Dokku: its own IP on
Docker's bridge) with the same PORT, and its own host name (see launch.py).
"""

from __future__ import annotations

import json
import re
import secrets
import shlex
import shutil
import signal
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


def process_env(
    ctx: Context, app: str, build_no: int, dyno: str, ip: str = "127.0.0.1"
) -> dict[str, str]:
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
    # A real container binds 0.0.0.0 in its own network namespace; stand-in containers
    # share the test machine's network, so each binds its own loopback address.
    env["BIND_HOST"] = ip
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
    # every Procfile type, `release` too (ps updateScale: `procfile-util list`), so
    # `ps:scale` lists `release: 0` after a deploy
    valid = set(meta.get("processes", {}))
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


def _dyno_file(ctx: Context, app: str, kind: str, name: str) -> Path:
    """$DOKKU_ROOT/<app>/CONTAINER.<dyno> (and IP., PORT.), as scheduler-deploy-process-
    container and the network plugin's network-write-ipaddr/-port write them."""
    proc_index = name[len(app) + 1 :]
    return ctx.paths.app(app) / f"{kind}.{proc_index}"


def _container_file(ctx: Context, app: str, name: str) -> Path:
    return _dyno_file(ctx, app, "CONTAINER", name)


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


ADDRESSES = "addresses.json"  # container key -> loopback address, for every app


def _allocate_ip(ctx: Context, sup: Supervisor, container: str) -> str:
    """A loopback address no live container of any app holds (nor anything else on PORT)."""
    path = ctx.paths.standin(ADDRESSES)
    with ctx.app_lock(".addresses"):
        try:
            table = json.loads(read_file(path) or "{}")
        except ValueError:
            table = {}
        live = set(sup.names())
        table = {key: ip for key, ip in table.items() if key in live}
        used = set(table.values())
        for host in range(2, 255):
            ip = f"127.0.0.{host}"
            if ip in used or _listening(ip, ctx.settings.port):
                continue
            table[container] = ip
            write_file(path, json.dumps(table, indent=1, sort_keys=True))
            return ip
    raise DeployError("The Dokku stand-in has no free loopback address left for a container")


def _write_instance(
    ctx: Context,
    app: str,
    build_no: int,
    deploy_dir: Path,
    proc: str,
    index: int,
    command: str,
    sup: Supervisor,
) -> Instance:
    dyno = f"{proc}.{index}"
    directory = app_dir(ctx, app, build_no)
    cid = secrets.token_hex(32)
    inst = Instance(
        app=app,
        process_type=proc,
        index=index,
        script=str(deploy_dir / f"{dyno}.sh"),
        env_file=str(deploy_dir / f"{dyno}.env"),
        cwd=str(directory),
        user=ctx.settings.app_user,
        stop_timeout=int(
            ctx.props.get("ps", app, "stop-timeout-seconds") or ctx.settings.stop_timeout
        ),
        description=f"Dokku stand-in app {app} process {dyno} (build {build_no}, {cid[:12]})",
        cid=cid,
        port=ctx.settings.port,
    )
    inst.ip = _allocate_ip(ctx, sup, inst.container)
    write_file(
        Path(inst.script),
        "#!/bin/bash\n"
        f"# Dokku STAND-IN process {app} {dyno} (build {build_no}): the Procfile command.\n"
        f"cd {shlex.quote(str(directory))}\n"
        f"exec /bin/bash -c {shlex.quote(command)}\n",
        0o755,
    )
    write_file(
        Path(inst.env_file),
        env_file_text(process_env(ctx, app, build_no, dyno, inst.ip)),
        0o600,
    )
    return inst


def wait_to_retire(ctx: Context, app: str) -> int:
    """checks-get-property wait-to-retire: the app's, else the global, else 60
    (dokku/dokku plugins/checks/internal-functions fn-checks-computed-wait-to-retire)."""
    value = (
        ctx.props.get("checks", app, "wait-to-retire")
        or ctx.props.get("checks", "--global", "wait-to-retire")
        or str(ctx.settings.wait_to_retire)
    )
    return int(value)


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


def _listening(ip: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((ip, port)) == 0


def check_headers(ctx: Context, app: str) -> dict[str, str]:
    """The headers check-deploy adds (dokku/dokku plugins/scheduler-docker-local/check-deploy):
    X-Forwarded-Proto https when the app has a certificate, and Host: the first of the app's
    domains (domains-list: the VHOST file in its order, nothing when vhosts are disabled)
    other than `localhost` and `*`. With no domain there is no Host override: the checker
    asks http://<container ip>:<port>, so Host is that address and port."""
    headers = {"Accept": "*/*"}
    tls = ctx.paths.app(app) / "tls"
    if (tls / "server.crt").exists() and (tls / "server.key").exists():
        headers["X-Forwarded-Proto"] = "https"
    domains = ctx.app_vhosts(app) if ctx.vhost_enabled(app) else []
    for domain in domains:
        if domain not in ("localhost", "*"):
            headers["Host"] = domain
            break
    return headers


def run_checks(
    ctx: Context, app: str, inst: Instance, meta: dict, sup: Supervisor, env: dict[str, str]
) -> int:
    """docker-container-healthchecker, as Dokku's check-deploy calls it; returns failures."""
    proc = inst.process_type
    checks = list((meta.get("app_json", {}).get("healthchecks") or {}).get(proc) or [])
    if not checks:
        # `add --if-empty --uptime <checks --global default-wait, 10>`
        default_wait = ctx.props.get("checks", "--global", "default-wait") or str(
            ctx.settings.checks_default_wait
        )
        checks = [{"name": "default", "type": "startup", "uptime": int(default_wait)}]
    if proc == "web":
        checks.append(
            {"name": "port listening check", "listening": True, "port": inst.port, "warn": True}
        )
    headers = check_headers(ctx, app)
    failures = 0
    for check in checks:
        name = check.get("name") or "healthcheck"
        attempts = int(check.get("attempts") or 3)
        timeout = int(check.get("timeout") or 5)
        wait = int(check.get("wait") or 5)
        port = int(check.get("port") or inst.port)
        error = None
        if check.get("listening"):
            out.verbose(
                f"Running healthcheck name='{name}' attempts={attempts} port={port}"
                f" retries={attempts - 1} timeout={timeout} type='listening' wait={wait}"
            )
            for attempt in range(attempts):
                error = None if _listening(inst.ip, port) else f"nothing listens on port {port}"
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
                status = sup.status(inst.container)
                if status.state == "exited":
                    error = f"Container state: {status.state}"
                    break
                error = _http_check(
                    f"http://{inst.ip}:{port}{path}",
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
            status = sup.status(inst.container)
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
        for _, line in sup.log_lines(inst.container, 200):
            out.verbose(line)
    out.info2_quiet(f"End of {app} container output ({cid[:12]} {inst.process_type}.{inst.index})")


def deploy(ctx: Context, app: str, build_no: int, only_type: str | None = None) -> None:
    """scheduler-docker-local scheduler-deploy: start new containers beside the old ones,
    check them, switch the proxy, retire the old ones."""
    meta = load_meta(ctx, app, build_no)
    processes = {k: v for k, v in meta.get("processes", {}).items() if k != "release"}
    formation = [(n, q) for n, q in get_formations(ctx, app) if n in processes]
    sup = supervisor(ctx)
    previous = current_instances(ctx, app)
    deploy_id, deploy_dir = _new_deploy_dir(ctx, app)
    wanted: dict[str, Instance] = {}
    started: list[Instance] = []

    def deployed_type(name: str) -> bool:
        return not only_type or previous[name].process_type == only_type

    try:
        # web first, one container at a time, then the other types (Dokku: in parallel)
        for proc, qty in sorted(formation, key=lambda item: (item[0] != "web", item[0])):
            if only_type and proc != only_type:
                continue
            if qty <= 0:
                continue
            out.info1(f"Deploying {proc} (count={qty})")
            for index in range(1, qty + 1):
                inst = _write_instance(
                    ctx, app, build_no, deploy_dir, proc, index, processes[proc], sup
                )
                started.append(inst)
                sup.start(inst)
                out.verbose(f"Attempting pre-flight checks ({proc}.{index})")
                env = process_env(ctx, app, build_no, f"{proc}.{index}", inst.ip)
                failures = run_checks(ctx, app, inst, meta, sup, env)
                if failures:
                    _show_output(app, inst, sup, inst.cid)
                    sup.stop(inst.container, inst.stop_timeout)
                    out.warn(f"Could not start due to {failures} failed checks ({proc}.{index})")
                    raise DeployError(f"Deploy of {app} failed: the previous release keeps running")
                out.verbose(f"All checks successful ({proc}.{index})")
                old = previous.get(inst.name)
                if old is not None and old.cid:
                    out.verbose(
                        f"Scheduling old container shutdown in {wait_to_retire(ctx, app)}"
                        f" seconds ({proc}.{index})"
                    )
                wanted[inst.name] = inst
    except DeployError:
        # The stand-in removes every new container of the failed deploy (Dokku stops the
        # one that failed); the old ones never stopped and the proxy never switched.
        for inst in started:
            sup.remove(inst.container)
        shutil.rmtree(deploy_dir, ignore_errors=True)
        raise

    # process types this deploy did not touch keep their containers
    for name, inst in previous.items():
        if not deployed_type(name):
            wanted[name] = inst
    for name, inst in wanted.items():
        write_file(_container_file(ctx, app, name), inst.cid + "\n")
        write_file(_dyno_file(ctx, app, "IP", name), inst.ip + "\n")
        write_file(_dyno_file(ctx, app, "PORT", name), str(inst.port) + "\n")
    for name in set(previous) - set(wanted):
        for kind in ("CONTAINER", "IP", "PORT"):
            _dyno_file(ctx, app, kind, name).unlink(missing_ok=True)

    write_file(
        deploy_dir / "instances.json",
        json.dumps([vars(i) for i in wanted.values()], indent=2),
    )
    ctx.props.set("standin", app, "deploy", deploy_id)
    ctx.props.set("standin", app, "build", str(build_no))
    ctx.props.set("common", app, "deployed", "true")
    ctx.props.set("ps", app, "restore", "true")
    out.info1("Running post-deploy")
    proxy.configure(ctx, app, web_listeners(wanted))
    execute_task(ctx, app, build_no, meta, "postdeploy")

    # kill the old containers: SIGTERM now, stop and remove after wait-to-retire
    retiring = [inst.container for name, inst in previous.items() if deployed_type(name)]
    if retiring:
        for container in retiring:
            sup.kill(container, signal.SIGTERM)
        delay = wait_to_retire(ctx, app)
        out.info1(f"Shutting down old containers in {delay} seconds")
        sup.retire(retiring, delay)
    # what the retiring containers still run from stays until the next deploy
    in_use = [*wanted.values(), *previous.values()]
    _prune_deploys(ctx, app, keep={deploy_id, *(Path(i.script).parent.name for i in in_use)})
    prune(ctx, app, keep={build_no, *(int(Path(i.cwd).parent.name) for i in in_use)})


def web_listeners(instances: dict[str, Instance]) -> list[str]:
    """DOKKU_APP_WEB_LISTENERS: <ip>:<port> of each web container, in dyno order."""
    return [
        f"{inst.ip}:{inst.port}"
        for _, inst in sorted(instances.items(), key=lambda item: item[1].index)
        if inst.process_type == "web"
    ]


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
        sup.stop(inst.container, inst.stop_timeout)


def remove_app(ctx: Context, app: str) -> None:
    sup = supervisor(ctx)
    containers = {inst.container for inst in current_instances(ctx, app).values()}
    # and the old ones still retiring
    pattern = re.compile(rf"{re.escape(app)}\.[A-Za-z0-9_-]+\.\d+\.[0-9a-f]{{12}}")
    containers.update(name for name in sup.names() if pattern.fullmatch(name))
    for container in sorted(containers):
        sup.remove(container)
    shutil.rmtree(ctx.paths.standin("apps", app), ignore_errors=True)


def running_state(ctx: Context, app: str) -> tuple[int, str]:
    """scheduler-app-status: (process count, "true" | "false" | "mixed")."""
    sup = supervisor(ctx)
    instances = current_instances(ctx, app)
    running = sum(1 for inst in instances.values() if sup.status(inst.container).active)
    if not instances or running == 0:
        return len(instances), "false"
    return len(instances), "true" if running == len(instances) else "mixed"


def formation_tuples(ctx: Context, app: str) -> list[tuple[str, int]]:
    return get_formations(ctx, app)
