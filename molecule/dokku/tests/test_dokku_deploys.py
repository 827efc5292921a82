"""Issue 9 on the Dokku target: deploys as a user would make them, each against a defect.

Runs after test_dokku.py (file order). Every case runs the scenario's converge (deploy.yml with
the scenario's inventory) with at most the variables a user would change, then looks at what
Dokku and the app say. Dokku facts cite dokku/dokku (or a plugin) source paths.

Not timed yet (estimate: 10 to 15 minutes on 2 cores): five deploys that build, three
config-only runs, one second app.
"""

from __future__ import annotations

import datetime
import http.client
import json
import re
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from test_dokku import (
    APP,
    PROJECT_DIR,
    SCENARIO_DIR,
    VHOST,
    dokku,
    healthy,
    playbook,
    recap,
    request,
)

CONVERGE = str(SCENARIO_DIR / "converge.yml")
RELIABILITY_FIGURES = Path(tempfile.gettempdir()) / "double-boiler-dokku-redeploy-under-load.json"


def converge(*extra: str) -> str:
    args: list[str] = []
    for value in extra:
        args += ["-e", value]
    result = playbook(CONVERGE, *args)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    return output


def changed_source(tmp: str, marker: str, edit=None) -> Path:
    """A clone of this repository with one more commit (so its archive differs)."""
    source = Path(tmp) / "src"
    subprocess.run(["git", "clone", "--quiet", str(PROJECT_DIR), str(source)], check=True)
    (source / "app" / "demo" / "static" / "redeploy-marker.txt").write_text(marker + "\n")
    if edit is not None:
        edit(source)
    git = ["git", "-C", str(source), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "--quiet", "-m", marker], check=True)
    return source


def source_vars(source: Path, tmp: str) -> list[str]:
    return [
        f"dokku_app_source_dir={source}",
        f"dokku_app_archive_controller_path={tmp}/source.tar.gz",
    ]


def scale(host) -> dict[str, int]:
    out = dokku(host, "ps:scale", APP).stdout
    return {m[1]: int(m[2]) for m in re.finditer(r"^\s*([\w-]+):\s+(\d+)\s*$", out, re.M)}


class Watcher(threading.Thread):
    """Polls /healthz (the app as a whole) and records whether a Celery worker answered."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[int, int]] = []  # (HTTP status, worker count)
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                status, _, data = request("GET", "/healthz")
                count = data["checks"]["workers"].get("count", 0) if isinstance(data, dict) else 0
            except (OSError, http.client.HTTPException):
                status, count = 0, 0
            self.samples.append((status, count))
            time.sleep(0.5)

    def finish(self) -> list[tuple[int, int]]:
        self.stop.set()
        self.join(timeout=30)
        return self.samples


# -- the install gave no key push access (issue 9 #8) -----------------------------------------


def test_an_existing_root_key_got_no_push_access(host):
    # prepare.yml put /root/.ssh/id_rsa.pub there before the package installed; Dokku's
    # debian/postinst adds dokku/key_file whenever that file exists.
    assert host.file("/root/.ssh/id_rsa.pub").exists
    listed = dokku(host, "ssh-keys:list", check=False)
    assert 'NAME="default"' not in listed.stdout + listed.stderr


# -- TLS none: the default on a fresh host (issue 9 #1) --------------------------------------


def test_default_tls_none_serves_plain_http_without_a_redirect(host):
    config = json.loads(dokku(host, "config:export", "--format", "json", APP).stdout)
    assert config["DJANGO_HTTPS_ONLY"] == "false"
    status, headers, _ = request("GET", "/")
    assert status == 200, headers  # DJANGO_HTTPS_ONLY=true would answer 301 to https://
    assert "Strict-Transport-Security" not in headers


# -- mode switches keep a Celery worker up (issue 9 #10) -------------------------------------


@pytest.mark.parametrize("mode", ["split", "one-dyno"])
def test_mode_switch_keeps_a_celery_worker_answering(host, mode):
    watcher = Watcher()
    watcher.start()
    try:
        converge(f"dokku_app_mode={mode}")
    finally:
        samples = watcher.finish()
    assert scale(host).get("worker", 0) == (1 if mode == "split" else 0)
    assert healthy()["checks"]["workers"]["count"] >= 1
    without_worker = [s for s in samples if s[0] != 200 or s[1] < 1]
    assert samples and not without_worker, f"{len(without_worker)} of {len(samples)} samples"


# -- TLS certificate: certs:add, HTTPS with the test CA, HTTP redirects (issue 9 #1) --------


def make_ca_and_certificate(directory: Path, name: str) -> tuple[Path, Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "double-boiler test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "server.crt", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def https_get(path: str, ca: Path) -> tuple[int, dict]:
    context = ssl.create_default_context(cafile=str(ca))
    with (
        socket.create_connection(("127.0.0.1", 443), timeout=30) as raw,
        context.wrap_socket(raw, server_hostname=VHOST) as tls,
    ):
        request_line = f"GET {path} HTTP/1.1\r\nHost: {VHOST}\r\nConnection: close\r\n\r\n"
        tls.sendall(request_line.encode())
        response = http.client.HTTPResponse(tls)
        response.begin()
        body = response.read()
    return response.status, {"headers": dict(response.getheaders()), "body": body}


def test_tls_certificate_serves_https_with_the_given_certificate_and_redirects_http(host, tmp_path):
    ca, crt, key = make_ca_and_certificate(tmp_path, VHOST)
    tls_vars = [
        "dokku_app_tls=certificate",
        f"dokku_app_tls_certificate_file={crt}",
        f"dokku_app_tls_key_file={key}",
    ]
    try:
        output = converge(*tls_vars)
        assert key.read_text().splitlines()[1] not in output  # the key is never shown
        assert dokku(host, "certs:report", APP, "--ssl-enabled").stdout.strip() == "true"
        config = json.loads(dokku(host, "config:export", "--format", "json", APP).stdout)
        assert config["DJANGO_HTTPS_ONLY"] == "true"
        status, answer = https_get("/healthz", ca)
        assert status == 200, answer
        assert json.loads(answer["body"])["status"] == "ok"
        status, answer = https_get("/", ca)
        assert status == 200 and "Strict-Transport-Security" in answer["headers"]
        status, headers, _ = request("GET", "/")
        assert status in (301, 308), headers
        assert headers["Location"].startswith(f"https://{VHOST}")
        again = playbook(CONVERGE, *[a for v in tls_vars for a in ("-e", v)])
        assert again.returncode == 0 and recap(again.stdout)["changed"] == 0
    finally:
        converge()  # back to the default (TLS none): the certificate is removed
    assert dokku(host, "certs:report", APP, "--ssl-enabled").stdout.strip() == "false"
    assert request("GET", "/")[0] == 200


# -- a release whose Celery cannot start does not go live (issue 9 #2) -----------------------


def break_celery(source: Path) -> None:
    procfile = source / "LocalProcfile"
    procfile.write_text(
        re.sub(
            r"^worker:.*$",
            "worker: exec celery --workdir app --app no_such_app worker",
            procfile.read_text(),
            flags=re.MULTILINE,
        )
    )


def test_a_release_whose_celery_cannot_start_never_goes_live(host):
    before = healthy()
    with tempfile.TemporaryDirectory(prefix="double-boiler-no-celery-") as tmp:
        source = changed_source(tmp, "celery cannot start", edit=break_celery)
        result = playbook(
            CONVERGE,
            *[a for v in source_vars(source, tmp) for a in ("-e", v)],
            "-e",
            "dokku_app_state_dir=/var/lib/double-boiler/dokku-no-celery",
        )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-4000:]
    assert "failed checks" in output or "checks" in output.lower(), output[-4000:]
    after = healthy()
    # The old dyno kept serving with its own worker: the same Celery node, main process
    # and pool children (its heartbeat). Not the web pid: either of the dyno's two
    # Gunicorn workers may answer a request.
    assert after["checks"]["workers"]["names"] == before["checks"]["workers"]["names"]
    assert after["checks"]["workers"]["pids"] == before["checks"]["workers"]["pids"]
    # The next run of the good source deploys it again (issue 9 #6: nothing stale recorded).
    converge()
    assert healthy()["checks"]["workers"]["count"] >= 1


# -- an IP-addressed host: the first deploy passes Dokku's checks (issue 9 #3) ---------------


def test_first_deploy_on_an_ip_addressed_host_passes_the_checks(host):
    app = "ip-app"
    try:
        converge(
            "dokku_host_hostname=127.0.0.1",
            f"dokku_app_name={app}",
            "dokku_app_broker=database",
        )
        assert dokku(host, "domains:report", app, "--domains-app-vhosts").stdout.split() == [
            "127.0.0.1"
        ]
        status, _, data = request("GET", "/healthz", host_header="127.0.0.1")
        assert status == 200 and data["status"] == "ok", data
    finally:
        dokku(host, "apps:destroy", app, "--force", check=False)
        dokku(host, "postgres:destroy", f"{app}-db", "--force", check=False)
        converge()  # the global domain back to the inventory's
    assert dokku(host, "domains:report", "--global", "--domains-global-vhosts").stdout.split() == [
        "dokku.test"
    ]


# -- a redeploy under load: no failed request, no lost job (issue 9, docs/reliability.md) ---


class Load:
    """50 clients on the app and a job submitter, counting what fails."""

    CLIENTS = 50

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.requests = 0
        self.failures: list[str] = []
        self.job_ids: list[int] = []
        self.threads = [threading.Thread(target=self.client, daemon=True) for _ in range(50)]
        self.threads.append(threading.Thread(target=self.submitter, daemon=True))

    def record(self, ok: bool, what: str) -> None:
        with self.lock:
            self.requests += 1
            if not ok:
                self.failures.append(what)

    def client(self) -> None:
        while not self.stop.is_set():
            try:
                status, _, _ = request("GET", "/")
                self.record(status == 200, f"GET / {status}")
            except (OSError, http.client.HTTPException) as exc:
                self.record(False, f"GET / {type(exc).__name__}")
            time.sleep(0.1)

    def submitter(self) -> None:
        while not self.stop.is_set():
            try:
                status, _, data = request("POST", "/api/jobs/batch", {"count": 2, "io_wait_ms": 20})
                self.record(status == 202, f"POST /api/jobs/batch {status}")
                if status == 202:
                    with self.lock:
                        self.job_ids += data["ids"]
            except (OSError, http.client.HTTPException) as exc:
                self.record(False, f"POST /api/jobs/batch {type(exc).__name__}")
            time.sleep(0.5)

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)


def unfinished(ids: list[int], deadline_s: float) -> dict[int, str]:
    deadline = time.monotonic() + deadline_s
    pending: dict[int, str] = {i: "?" for i in ids}
    while pending and time.monotonic() < deadline:
        chunk = list(pending)[:200]
        status, _, data = request("GET", "/api/jobs?ids=" + ",".join(map(str, chunk)))
        if status == 200:
            for job in data["jobs"]:
                if job["status"] == "done":
                    pending.pop(job["id"], None)
                else:
                    pending[job["id"]] = job["status"]
        time.sleep(1)
    return pending


def test_redeploy_under_load_fails_no_request_and_loses_no_job(host):
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="double-boiler-under-load-") as tmp:
        source = changed_source(tmp, "redeploy under load")
        with Load() as load:
            converge(*source_vars(source, tmp))
            time.sleep(5)  # the old container's retirement falls inside the measurement
    lost = unfinished(load.job_ids, deadline_s=180)
    figures = {
        "clients": Load.CLIENTS,
        "requests": load.requests,
        "failed_requests": len(load.failures),
        "failures_by_kind": {k: load.failures.count(k) for k in sorted(set(load.failures))},
        "jobs_submitted": len(load.job_ids),
        "jobs_lost": len(lost),
        "seconds": round(time.monotonic() - started, 1),
    }
    RELIABILITY_FIGURES.write_text(json.dumps(figures, indent=2) + "\n")
    print("redeploy under load:", json.dumps(figures))
    assert load.requests > 0 and figures["jobs_submitted"] > 0
    assert figures["failed_requests"] == 0, figures
    assert figures["jobs_lost"] == 0, (figures, lost)
