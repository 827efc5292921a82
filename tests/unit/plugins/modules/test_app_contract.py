"""double_boiler.paas.app_contract: every missing piece of the contract at once; no change."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args

from tests.unit.conftest import ROOT, load_module

app_contract = load_module("app_contract")

PROCFILE = (
    "release: python app/manage.py migrate --noinput\nweb: bin/dyno\nworker: bin/dyno worker\n"
)
LOCAL_PROCFILE = (
    "web: exec gunicorn --config gunicorn.conf.py\n"
    "worker: exec celery --workdir app --app proj worker --loglevel INFO\n"
)
REQUIREMENTS = "Django==5.2.9\ncelery==5.7.0\ngunicorn==23.0.0\ngevent==25.9.1\nhoncho==2.0.0\n"


def run(capsys, check_mode: bool = False, **args) -> dict:
    args = {"git_tracked": False, **args, "_ansible_check_mode": check_mode}
    with patch_module_args(args), pytest.raises(SystemExit):
        app_contract.main()
    return json.loads(capsys.readouterr().out)


def write(path: Path, text: str, executable: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if executable:
        path.chmod(0o755)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A checkout that follows the contract."""
    app = tmp_path / "app"
    write(app / "Procfile", PROCFILE)
    write(app / "LocalProcfile", LOCAL_PROCFILE)
    write(app / "bin" / "dyno", "#!/usr/bin/env python3\n", executable=True)
    write(app / "gunicorn.conf.py", 'worker_class = "gevent"\n')
    write(app / "requirements.txt", REQUIREMENTS)
    write(app / ".python-version", "3.11\n")
    write(app / "app" / "manage.py", "")
    write(app / "app.json", "{}")
    return app


def test_this_repository_follows_the_contract(capsys):
    result = run(capsys, path=str(ROOT), git_tracked=True, mode="split")
    assert result["problems"] == []
    assert result.get("failed") is not True
    assert result["changed"] is False
    assert result["manage_py"] == "app/manage.py"
    assert result["processes"]["web"] == "bin/dyno"
    assert set(result["local_processes"]) == {"web", "worker"}


def test_a_checkout_that_follows_it_passes(capsys, checkout):
    result = run(capsys, path=str(checkout))
    assert result.get("failed") is not True
    assert result["problems"] == []
    assert result["python_version"] == "3.11"


def test_an_empty_directory_gets_every_problem_in_one_failure(capsys, tmp_path):
    result = run(capsys, path=str(tmp_path))
    assert result["failed"] is True
    names = ["Procfile", "LocalProcfile", "bin/dyno", "gunicorn.conf.py", "requirements.txt"]
    assert len(result["problems"]) == len(names) + 1  # and .python-version
    for number, name in enumerate(names, 1):
        assert f"({number}) {name} is missing" in result["msg"]
    assert ".python-version is missing" in result["msg"]


def test_a_path_that_is_not_a_directory(capsys, tmp_path):
    result = run(capsys, path=str(tmp_path / "nowhere"))
    assert result["failed"] is True
    assert result["problems"] == [
        f"{tmp_path / 'nowhere'} is not a directory: give the app checkout (it holds Procfile)."
    ]


@pytest.mark.parametrize(
    ("procfile", "expected"),
    [
        ("release: python app/manage.py migrate\nweb: gunicorn proj.wsgi\n", "not the outer layer"),
        ("release: python app/manage.py migrate\n", "has no web process"),
        ("web: bin/dyno\n", "no release process running migrations"),
        ("web: bin/dyno\nrelease: python app/manage.py collectstatic\n", "no release process"),
        ("web: bin/dyno\nrelease: python src/manage.py migrate\n", "src/manage.py, which is not"),
    ],
)
def test_outer_procfile_problems(capsys, checkout, procfile, expected):
    write(checkout / "Procfile", procfile)
    result = run(capsys, path=str(checkout))
    assert result["failed"] is True
    assert len(result["problems"]) == 1 and expected in result["problems"][0], result["problems"]


def test_web_may_exec_the_outer_layer_through_python(capsys, checkout):
    write(
        checkout / "Procfile",
        "web: exec python3 ./bin/dyno\nrelease: python app/manage.py migrate\n",
    )
    assert run(capsys, path=str(checkout))["problems"] == []


def test_split_mode_needs_a_worker_process_type(capsys, checkout):
    write(checkout / "Procfile", "web: bin/dyno\nrelease: python app/manage.py migrate\n")
    assert run(capsys, path=str(checkout))["problems"] == []
    result = run(capsys, path=str(checkout), mode="split")
    assert result["problems"] == [
        "Procfile: split mode runs Celery in its own process type: add `worker: bin/dyno worker`."
    ]


def test_inner_procfile_needs_gunicorn_and_a_celery_worker(capsys, checkout):
    write(checkout / "LocalProcfile", "web: python -m http.server\nworker: exec celery beat\n")
    problems = run(capsys, path=str(checkout))["problems"]
    assert len(problems) == 2
    assert "web must run Gunicorn" in problems[0]
    assert "worker must run a Celery worker" in problems[1]


def test_bin_dyno_must_be_executable(capsys, checkout):
    (checkout / "bin" / "dyno").chmod(0o644)
    assert run(capsys, path=str(checkout))["problems"] == [
        "bin/dyno is not executable: run `chmod +x bin/dyno`."
    ]


def test_runtime_requirements_are_named_with_the_reason(capsys, checkout):
    write(checkout / "requirements.txt", "Django==5.2\ncelery==5.7\n")
    problems = run(capsys, path=str(checkout))["problems"]
    assert problems == [
        "requirements.txt does not name honcho: add it (bin/dyno imports honcho to run the"
        " LocalProcfile).",
        "requirements.txt does not name gunicorn: add it (the LocalProcfile's web process is"
        " Gunicorn).",
        "requirements.txt does not name gevent: add it (gunicorn.conf.py asks for gevent workers).",
    ]


def test_requirements_names_are_normalised_and_includes_followed(capsys, checkout):
    write(checkout / "base.txt", "django>=5\nCelery[redis]==5.7  # the broker\n")
    write(checkout / "requirements.txt", "-r base.txt\ngunicorn[gevent]==23\nHoncho==2.0\n")
    assert run(capsys, path=str(checkout))["problems"] == []


def test_gevent_is_needed_only_when_gunicorn_conf_asks_for_it(capsys, checkout):
    write(checkout / "requirements.txt", REQUIREMENTS.replace("gevent==25.9.1\n", ""))
    assert run(capsys, path=str(checkout))["problems"]
    write(checkout / "gunicorn.conf.py", 'worker_class = "sync"\n')
    assert run(capsys, path=str(checkout))["problems"] == []


def test_python_version(capsys, checkout):
    write(checkout / ".python-version", "latest\n")
    assert run(capsys, path=str(checkout))["problems"] == [
        ".python-version holds 'latest': write a Python version such as 3.11."
    ]
    (checkout / ".python-version").unlink()
    write(checkout / "runtime.txt", "python-3.12.4\n")
    result = run(capsys, path=str(checkout))
    assert result["problems"] == [] and result["python_version"] == "3.12.4"


def test_app_json_must_be_a_json_object_when_present(capsys, checkout):
    write(checkout / "app.json", "[]")
    assert "app.json is not a valid JSON object" in run(capsys, path=str(checkout))["problems"][0]
    (checkout / "app.json").unlink()
    assert run(capsys, path=str(checkout))["problems"] == []


def git(path: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        check=True,
        capture_output=True,
    )


def test_git_tracked_files_and_modes_are_what_the_platforms_get(capsys, checkout):
    result = run(capsys, path=str(checkout), git_tracked=True)
    assert any("is not in a git work tree" in p for p in result["problems"])
    git(checkout, "init", "-q")
    git(checkout, "add", "Procfile", "LocalProcfile", "requirements.txt", "bin/dyno")
    git(checkout, "update-index", "--chmod=-x", "bin/dyno")
    problems = run(capsys, path=str(checkout), git_tracked=True)["problems"]
    assert problems == [
        "not tracked by git, so never deployed: gunicorn.conf.py, app/manage.py: `git add` and"
        " commit them.",
        "git records bin/dyno as not executable: run `git update-index --chmod=+x bin/dyno`"
        " and commit.",
    ]
    git(checkout, "add", "-A")
    git(checkout, "update-index", "--chmod=+x", "bin/dyno")
    assert run(capsys, path=str(checkout), git_tracked=True)["problems"] == []


def test_problems_can_be_returned_instead_of_failing(capsys, tmp_path):
    result = run(capsys, path=str(tmp_path), fail_on_problems=False)
    assert result.get("failed") is not True
    assert result["changed"] is False
    assert len(result["problems"]) == 6


def test_check_mode_reports_the_same_and_changes_nothing(capsys, checkout):
    (checkout / "bin" / "dyno").chmod(0o644)
    before = sorted((str(p), p.stat().st_mode, p.stat().st_mtime_ns) for p in checkout.rglob("*"))
    normal = run(capsys, path=str(checkout))
    checked = run(capsys, check_mode=True, path=str(checkout))
    assert checked["problems"] == normal["problems"] and checked["changed"] is False
    after = sorted((str(p), p.stat().st_mode, p.stat().st_mtime_ns) for p in checkout.rglob("*"))
    assert after == before
    assert os.access(checkout / "Procfile", os.R_OK)
