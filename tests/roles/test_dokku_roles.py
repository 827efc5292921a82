"""dokku_host + dokku_app as ansible-playbook runs them, against the fake Dokku (issue 9).

The roles run unchanged on this machine (connection local) with a `dokku` executable on PATH
that is tests/support/fake_dokku.py, its state kept in a file between calls. The order of
the calls it records is what these tests judge: which restarts happen, whether a worker is
scaled down before the release that replaces it is live, which domains and config the app
gets. About 4 minutes on 2 cores (12 playbook runs).
"""

from __future__ import annotations

import http.server
import json
import os
import pickle
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.support.fake_dokku import FakeDokku

ROOT = Path(__file__).resolve().parents[2]
APP = "double-boiler"

DOKKU_SCRIPT = """#!{python}
import pickle, sys
sys.path.insert(0, {root!r})
state = {state!r}
with open(state, "rb") as handle:
    fake = pickle.load(handle)
reads_stdin = sys.argv[1] in ("git:from-archive", "config:import", "ssh-keys:add")
stdin = sys.stdin.buffer.read() if reads_stdin else None
rc, out, err = fake(["dokku", *sys.argv[1:]], stdin or None)
with open(state, "wb") as handle:
    pickle.dump(fake, handle)
sys.stdout.write(out)
sys.stderr.write(err)
sys.exit(rc)
"""

PLAYBOOK = """---
- name: The Dokku target, as playbooks/dokku.yml runs it
  hosts: dokku
  gather_facts: false
  roles:
    - role: dokku_host
    - role: dokku_app
"""


class Healthz(http.server.BaseHTTPRequestHandler):
    """What the app's /healthz answers when both layers are up."""

    def do_GET(self) -> None:
        body = json.dumps(
            {
                "status": "ok",
                "failing": [],
                "checks": {"web": {"ok": True}, "workers": {"ok": True, "count": 1}},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class Target:
    def __init__(self, tmp: Path, fake: FakeDokku, health_port: int) -> None:
        self.tmp = tmp
        self.state = tmp / "dokku.pickle"
        self.bin = tmp / "bin"
        self.bin.mkdir()
        script = self.bin / "dokku"
        script.write_text(
            DOKKU_SCRIPT.format(python=sys.executable, root=str(ROOT), state=str(self.state))
        )
        script.chmod(0o755)
        self.save(fake)
        (tmp / "inventory.yml").write_text(
            "dokku:\n  hosts:\n    dokku-vm:\n"
            "      ansible_connection: local\n"
            f"      ansible_python_interpreter: {sys.executable}\n"
            "      ansible_host: 203.0.113.10\n"
        )
        (tmp / "play.yml").write_text(PLAYBOOK)
        self.base_vars = {
            "dokku_app_state_dir": str(tmp / "state"),
            "dokku_app_archive_controller_path": str(tmp / "source.tar.gz"),
            "dokku_app_healthcheck_url": f"http://127.0.0.1:{health_port}/healthz",
            "dokku_app_healthcheck_timeout": 10,
        }

    def load(self) -> FakeDokku:
        with self.state.open("rb") as handle:
            return pickle.load(handle)  # noqa: S301 - our own test state

    def save(self, fake: FakeDokku) -> None:
        with self.state.open("wb") as handle:
            pickle.dump(fake, handle)

    def run(
        self, *flags: str, **extra: object
    ) -> tuple[subprocess.CompletedProcess, dict[str, int]]:
        env = {
            **os.environ,
            "PATH": f"{self.bin}:{os.environ['PATH']}",
            "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_HOME": str(self.tmp / "ansible-home"),
        }
        extra_vars = json.dumps({**self.base_vars, **extra})
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "ansible-playbook"),
                "-i",
                str(self.tmp / "inventory.yml"),
                str(self.tmp / "play.yml"),
                "-e",
                extra_vars,
                *flags,
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        match = re.search(
            r"ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", result.stdout
        )
        names = ["ok", "changed", "unreachable", "failed"]
        counts = dict(zip(names, map(int, match.groups()), strict=True)) if match else {}
        return result, counts


@pytest.fixture(scope="module")
def health_port():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Healthz)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


@pytest.fixture
def target(tmp_path, health_port) -> Target:
    fake = FakeDokku()
    fake.global_domains = []  # a fresh install; the role sets it
    return Target(tmp_path, fake, health_port)


def ok(run: tuple[subprocess.CompletedProcess, dict[str, int]]) -> dict[str, int]:
    result, counts = run
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    return counts


def mutations(fake: FakeDokku, since: int = 0) -> list[list[str]]:
    return [c for c in fake.calls[since:] if c in fake.mutating_calls()]


def test_a_fresh_host_addressed_by_ip_deploys_plain_http_then_changes_nothing(target):
    """Issue 9 #1, #3, #7, #10 on the README's default path: an IP, no domain, no TLS."""
    ok(target.run())
    fake = target.load()
    app = fake.apps[APP]
    assert fake.global_domains == ["203.0.113.10"]  # domains:set-global, not debconf only
    assert app.domains == ["203.0.113.10"]  # what nginx and Dokku's checks name
    assert app.config["ALLOWED_HOSTS"] == "203.0.113.10"
    assert app.config["DJANGO_HTTPS_ONLY"] == "false"
    assert app.config["ALLOWED_HOSTS_OWN_ADDRESSES"] == "false"
    # bin/dyno sizes both for 512 MB (2 and 2) unless the container's limit is lower.
    assert app.config["WEB_CONCURRENCY"] == "auto" and app.config["CELERY_CONCURRENCY"] == "auto"
    assert app.config["DYNO_MEMORY_MB"] == "512"
    assert app.config["GUNICORN_WORKER_CLASS"] == "gevent"
    assert app.config["DYNO_DRAIN_SECONDS"] == "2"  # nginx reload, then SIGTERM
    assert app.buildpacks == ["https://github.com/heroku/heroku-buildpack-python.git#v351"]
    assert app.deployed and app.releases == 1 and app.restarts == 0
    assert ok(target.run())["changed"] == 0
    assert target.load().apps[APP].releases == 1


def test_check_mode_on_a_fresh_host_changes_nothing(target):
    result, counts = target.run("--check", "--diff")
    assert result.returncode == 0, result.stdout[-6000:]
    assert counts["changed"] > 0
    fake = target.load()
    assert fake.apps == {} and fake.mutating_calls() == []


def test_check_mode_of_a_mode_switch_changes_nothing(target):
    ok(target.run())
    done = len(target.load().mutating_calls())
    result, counts = target.run("--check", "--diff", dokku_app_mode="split")
    assert result.returncode == 0 and counts["changed"] > 0, result.stdout[-6000:]
    assert "worker=1" in result.stdout  # the diff says what would change
    assert len(target.load().mutating_calls()) == done


def test_missing_plugins_are_installed_at_their_pinned_refs(target):
    fake = target.load()
    fake.plugins = set()
    target.save(fake)
    ok(target.run())
    installs = [c for c in target.load().calls if c[0] == "plugin:install"]
    assert [c[c.index("--committish") + 1] for c in installs] == ["1.48.0", "1.43.0"]


def test_wildcard_domains_put_a_concrete_host_first_and_allow_the_suffix(target):
    """Issue 9 #4."""
    ok(target.run(dokku_app_domains=["*.example.org", "www.example.org"]))
    app = target.load().apps[APP]
    assert app.domains == ["www.example.org", "*.example.org"]
    assert app.config["ALLOWED_HOSTS"] == "www.example.org,.example.org"


def test_no_domain_at_all_lets_the_checks_reach_the_container_by_address(target):
    """Issue 9 #3 with vhosts off: no global domain, so no app domain and no Host header."""
    ok(target.run(dokku_host_vhost_enable=False))
    app = target.load().apps[APP]
    assert app.domains == []
    assert app.config["ALLOWED_HOSTS_OWN_ADDRESSES"] == "true"
    assert app.config["ALLOWED_HOSTS"] == "203.0.113.10"


def index_of(calls: list[list[str]], wanted: list[str]) -> int:
    return next(i for i, call in enumerate(calls) if call == wanted)


def test_switching_modes_keeps_a_worker_scaled_throughout(target):
    """Issue 9 #10: to split, the worker starts before web restarts without Celery; back to
    one-dyno, web restarts with its Celery before the worker stops."""
    ok(target.run())
    start = len(target.load().calls)
    ok(target.run(dokku_app_mode="split"))
    calls = target.load().calls[start:]
    assert index_of(calls, ["ps:scale", APP, "worker=1"]) < index_of(calls, ["ps:restart", APP])
    start = len(target.load().calls)
    ok(target.run(dokku_app_mode="one-dyno"))
    calls = target.load().calls[start:]
    assert index_of(calls, ["ps:restart", APP]) < index_of(calls, ["ps:scale", APP, "worker=0"])
    assert target.load().apps[APP].scale == {"web": 1, "worker": 0}


def test_linking_a_service_to_a_deployed_app_restarts_it_once(target):
    """Issue 9 #5: the link does not restart; the release step restarts once."""
    ok(target.run(dokku_app_broker="database"))
    before = target.load().apps[APP].restarts
    ok(target.run())
    fake = target.load()
    assert ["redis:link", f"{APP}-redis", APP, "--no-restart"] in fake.calls
    assert fake.apps[APP].restarts == before + 1


def test_a_failed_restart_after_a_link_fails_the_run(target):
    """Issue 9 #5: Dokku's link would warn and exit 0; the role's restart fails loudly."""
    ok(target.run(dokku_app_broker="database"))
    fake = target.load()
    fake.restart_fails = True
    target.save(fake)
    result, counts = target.run()
    assert result.returncode != 0 and counts["failed"] == 1
    assert "failed checks" in result.stdout


def test_a_given_certificate_is_added_and_https_enforced(target, tmp_path):
    """Issue 9 #1, mode certificate (the files are copied to the host, then certs:add)."""
    crt, key = tmp_path / "server.crt", tmp_path / "server.key"
    crt.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    key.write_text("-----BEGIN PRIVATE KEY-----\nsecretsecret\n-----END PRIVATE KEY-----\n")
    host_dir = Path(target.base_vars["dokku_app_state_dir"]) / APP
    fake = target.load()
    fake.files = {
        str(host_dir / "server.crt"): crt.read_text(),
        str(host_dir / "server.key"): key.read_text(),
    }
    target.save(fake)
    result, _ = target.run(
        dokku_app_tls="certificate",
        dokku_app_tls_certificate_file=str(crt),
        dokku_app_tls_key_file=str(key),
        dokku_app_healthcheck_url=target.base_vars["dokku_app_healthcheck_url"],
    )
    assert result.returncode == 0, result.stdout[-4000:]
    assert "secretsecret" not in result.stdout
    app = target.load().apps[APP]
    assert app.cert == crt.read_text()
    assert app.config["DJANGO_HTTPS_ONLY"] == "true"


def test_bad_inputs_fail_once_naming_each_problem_before_any_change(target, tmp_path):
    not_an_app = tmp_path / "not-an-app"
    not_an_app.mkdir()
    result, counts = target.run(
        dokku_app_source_dir=str(not_an_app),
        dokku_app_name="Not_Valid",
        dokku_app_domains=["*.example.org"],
        dokku_app_config={"DJANGO_HTTPS_ONLY": "false"},
        dokku_app_tls="certificate",
    )
    assert result.returncode != 0 and counts["failed"] == 1
    message = result.stdout
    for expected in (
        "dokku_app_name",
        "wildcards only",
        "DJANGO_HTTPS_ONLY are set by the role",
        "dokku_app_tls_certificate_file",
        "does not follow the app contract",
    ):
        assert expected in message, message[-4000:]
    fake = target.load()
    assert fake.apps == {}
    assert all(c[0] != "apps:create" for c in fake.calls)


def test_an_unknown_worker_class_is_refused_by_the_specs_before_any_change(target):
    result, _ = target.run(dokku_app_web_worker_class="eventlet")
    assert result.returncode != 0
    assert "dokku_app_web_worker_class must be one of: gevent, sync, gthread" in result.stdout
    assert target.load().apps == {}


def debconf_answers(**variables: object) -> dict[str, str]:
    """The debconf answers dokku_host's install step gives, rendered by Ansible's templar."""
    import yaml
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    tasks = yaml.safe_load((ROOT / "roles/dokku_host/tasks/install.yml").read_text())
    task = next(t for t in tasks if "ansible.builtin.debconf" in t)
    templar = Templar(loader=DataLoader(), variables=variables)
    return {
        item["question"]: str(templar.template(trust_as_template(item["value"])))
        for item in task["loop"]
    }


def test_no_key_file_wanted_answers_debconf_so_postinst_adds_none():
    """Issue 9 #8: debian/preinst reads dokku/skip_key_file, but debian/postinst adds
    dokku/key_file whenever that file exists, so the key file answer itself must be empty."""
    answers = debconf_answers(
        dokku_host_key_file="", dokku_host_hostname="dokku.test", dokku_host_vhost_enable=True
    )
    assert answers["dokku/skip_key_file"] == "true"
    assert answers["dokku/key_file"] == ""
    given = debconf_answers(
        dokku_host_key_file="/root/deploy.pub",
        dokku_host_hostname="dokku.test",
        dokku_host_vhost_enable=True,
    )
    assert given["dokku/skip_key_file"] == "false"
    assert given["dokku/key_file"] == "/root/deploy.pub"
