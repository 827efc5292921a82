"""The stand-in answers like Dokku: streams, prefixes, exit codes and formats.

Each expectation cites where Dokku (0.38, core plugins) or its plugins define it.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess

import pytest


def test_version_prints_dokkus_format(dokku):
    # common/functions dokku_version: "dokku version $(cat VERSION)"
    for spelling in ("version", "--version", "-v"):
        result = dokku(spelling)
        assert (result.rc, result.stdout, result.stderr) == (0, "dokku version 0.38.27\n", "")


def test_help_says_it_is_a_standin(dokku):
    result = dokku("--help")
    assert result.rc == 0
    assert "STAND-IN for Dokku" in result.stdout
    assert "git:from-archive" in result.stdout


def test_unknown_command_fails_like_dokku(dokku):
    # dokku script execute_dokku_cmd: two warnings on stderr, exit 1
    result = dokku("nope:thing", "x")
    assert result.rc == 1
    assert result.stdout == ""
    assert result.stderr == (
        " !     `nope:thing x` is not a dokku command.\n"
        " !     See `dokku help` for a list of available commands.\n"
    )


def test_apps_exists_exits_20_for_a_missing_app(dokku):
    # common.AppDoesNotExist.ExitCode() == 20, printed by LogFailWithError
    result = dokku("apps:exists", "ghost")
    assert (result.rc, result.stdout, result.stderr) == (
        20,
        "",
        " !     App ghost does not exist\n",
    )
    assert dokku("config:export", "--format", "json", "ghost").rc == 20


def test_apps_create_validates_names_and_refuses_duplicates(dokku):
    created = dokku("apps:create", "my-app.1")
    assert created.rc == 0
    assert created.stdout.startswith("-----> Creating my-app.1...\n")
    assert dokku("apps:exists", "my-app.1").rc == 0
    bad = dokku("apps:create", "My_App")
    assert bad.rc == 1
    assert bad.stderr == (
        " !     App name must begin with lowercase alphanumeric character, and may only"
        " contain lowercase alphanumerics, dots, and hyphens\n"
    )
    again = dokku("apps:create", "my-app.1")
    assert (again.rc, again.stderr) == (1, " !     Name is already taken\n")


def test_apps_list_text_and_json(dokku):
    empty = dokku("apps:list")
    assert empty.rc == 0
    assert empty.stdout == "=====> My Apps\n"
    assert empty.stderr == " !     You haven't deployed any applications yet\n"
    assert dokku("apps:list", "--format", "json").stdout == "[]\n"
    dokku("apps:create", "b")
    dokku("apps:create", "a")
    assert dokku("apps:list").stdout == "=====> My Apps\na\nb\n"
    assert dokku("--quiet", "apps:list").stdout == "a\nb\n"
    assert dokku("apps:list", "--format", "json").stdout == '["a","b"]\n'


def test_go_subcommands_reject_unknown_flags_with_exit_2(dokku):
    # spf13/pflag with ExitOnError
    result = dokku("apps:list", "--nope")
    assert result.rc == 2
    assert result.stderr.startswith("unknown flag: --nope\nUsage of apps:list:")


def test_config_set_echoes_values_and_export_prints_go_json(dokku):
    dokku("apps:create", "app")
    result = dokku("config:set", "--no-restart", "app", "B=two words", "A=<&>", "LONGER_KEY=3")
    assert result.rc == 0
    # config.SetMany: heading, then the values aligned in columns (what no_log must hide)
    assert result.stdout == (
        "-----> Setting config vars\n"
        "       A:           <&>\n"
        "       B:           two words\n"
        "       LONGER_KEY:  3\n"
    )
    exported = dokku("config:export", "--format", "json", "app").stdout
    # encoding/json: compact, sorted keys, HTML characters escaped
    assert exported.startswith('{"A":"\\u003c\\u0026\\u003e","B":"two words","LONGER_KEY":"3"')
    assert json.loads(exported)["A"] == "<&>"
    assert dokku("--quiet", "config:set", "app", "C=quiet").stdout == ""


def test_config_set_encoded_and_errors(dokku):
    dokku("apps:create", "app")
    value = "x=y 'quoted' $HOME\nsecond line"
    encoded = base64.b64encode(value.encode()).decode()
    assert dokku("config:set", "--encoded", "--no-restart", "app", f"K={encoded}").rc == 0
    assert dokku("config:get", "app", "K").stdout == value + "\n"
    assert dokku("config:get", "--quoted", "app", "K").stdout.startswith("'x=y '\\''quoted")
    bad_key = dokku("config:set", "app", "1BAD=x")
    assert (bad_key.rc, bad_key.stderr) == (1, " !     Invalid key name: '1BAD'\n")
    no_pair = dokku("config:set", "app", "NOEQUALS")
    assert (no_pair.rc, no_pair.stderr) == (1, " !     Invalid env pair: NOEQUALS\n")
    none = dokku("config:set", "app")
    assert none.stderr == " !     At least one env pair must be given\n"


def test_config_get_missing_key_exits_1_silently(dokku):
    dokku("apps:create", "app")
    result = dokku("config:get", "app", "NOPE")
    assert (result.rc, result.stdout, result.stderr) == (1, "", "")


def test_config_unset_and_import(dokku):
    dokku("apps:create", "app")
    dokku("config:set", "--no-restart", "app", "A=1")
    unset = dokku("config:unset", "--no-restart", "app", "A", "B")
    assert unset.stdout == (
        "-----> Unsetting A\n-----> Skipping B, it is not set in the environment\n"
    )
    imported = dokku(
        "config:import",
        "--no-restart",
        "--format",
        "json",
        "app",
        "-",
        stdin=json.dumps({"X": "1", "Y": "two"}),
    )
    assert imported.rc == 0
    assert "-----> Reading config vars from stdin" in imported.stdout
    assert json.loads(dokku("config:export", "--format", "json", "app").stdout) == {
        "NO_VHOST": "1",
        "X": "1",
        "Y": "two",
    }


def test_config_global_and_merged(dokku):
    dokku("apps:create", "app")
    assert dokku("config:set", "--global", "G=1").rc == 0
    assert json.loads(dokku("config:export", "--global", "--format", "json").stdout) == {"G": "1"}
    merged = dokku("config:export", "--merged", "--format", "json", "app").stdout
    assert json.loads(merged)["G"] == "1"
    assert "G" not in json.loads(dokku("config:export", "--format", "json", "app").stdout)


def test_app_vhosts_follow_the_global_domain(dokku):
    # domains post-create: no global VHOST -> NO_VHOST=1; with one -> <app>.<global>
    dokku("apps:create", "plain")
    assert dokku("domains:report", "plain", "--domains-app-enabled").stdout == "false\n"
    assert dokku("domains:set-global", "dokku.test").stdout == "-----> Set dokku.test\n"
    dokku("apps:create", "web")
    assert dokku("domains:report", "web", "--domains-app-vhosts").stdout == "web.dokku.test\n"
    report = dokku("domains:report", "web", "--format", "json").stdout
    assert json.loads(report) == {
        "app-enabled": "true",
        "app-vhosts": "web.dokku.test",
        "global-enabled": "true",
        "global-vhosts": "dokku.test",
    }


def test_domains_set_and_add(dokku):
    dokku("domains:set-global", "dokku.test")
    dokku("apps:create", "app")
    result = dokku("domains:set", "app", "a.example.org", "b.example.org")
    assert result.stdout == "-----> Set a.example.org b.example.org for app\n"
    assert dokku("domains:report", "app", "--domains-app-vhosts").stdout == (
        "a.example.org b.example.org\n"
    )
    added = dokku("domains:add", "app", "b.example.org", "c.example.org")
    assert added.stdout == (
        "-----> Skipping: b.example.org already added to app\n-----> Added c.example.org to app\n"
    )
    invalid = dokku("domains:set", "app", "Not_Valid!")
    assert (invalid.rc, invalid.stderr) == (1, " !     Not_Valid! is invalid. exiting...\n")
    missing = dokku("domains:set", "app")
    assert missing.rc == 1 and "Please specify a domain name" in missing.stderr


def test_reports_single_flag_json_and_errors(dokku):
    dokku("apps:create", "app")
    assert dokku("ps:report", "app", "--deployed").stdout == "false\n"
    data = json.loads(dokku("ps:report", "app", "--format", "json").stdout)
    # TrimPrefix with the legacy keys kept for ps
    assert data["deployed"] == "false" and data["computed-restart-policy"] == "on-failure:10"
    assert data["ps-computed-restart-policy"] == "on-failure:10"
    bad = dokku("ps:report", "app", "--nope")
    assert bad.rc == 1 and bad.stderr.startswith(
        " !     Invalid flag passed, valid flags: --deployed"
    )
    two = dokku("ps:report", "app", "--deployed", "--running")
    assert (two.rc, two.stdout, two.stderr) == (0, "", "")  # Dokku drops that error


def test_ps_scale_report_formats(dokku):
    dokku("apps:create", "app")
    # ps post-create sets web=1; scaleReport pads "<type>:" to 5 columns
    assert dokku("ps:scale", "app").stdout == (
        "-----> Scaling for app\nproctype: qty\n--------: ---\nweb:  1\n"
    )
    assert dokku("--quiet", "ps:scale", "app").stdout == "web:  1\n"
    assert dokku("ps:scale", "app", "--format", "json").stdout == (
        '[{"process_type":"web","quantity":1}]\n'
    )
    scaled = dokku("ps:scale", "app", "worker=2")
    assert scaled.stdout == "-----> Scaling app processes: worker=2\n"
    assert dokku("--quiet", "ps:scale", "app").stdout == "web:  1\nworker: 2\n"
    bad = dokku("ps:scale", "app", "web")
    assert (bad.rc, bad.stderr) == (1, " !     Missing count for process type web\n")


def test_plugin_list_and_installed(dokku):
    listed = dokku("plugin:list").stdout.splitlines()
    assert listed[0] == "plugn: dev"
    # plugn list: printf "  %-20s %-5s %-10s %s\n"
    assert "  apps                 0.38.27 enabled    dokku core apps plugin" in listed
    as_json = json.loads(dokku("plugin:list", "--format", "json").stdout)
    assert {"name", "version", "enabled", "core", "description"} <= set(as_json[0])
    if os.geteuid() != 0:
        assert (
            dokku("plugin:installed", "apps").stderr == " !     This command must be run as root\n"
        )
        return
    assert dokku("plugin:installed", "apps").rc == 0
    assert dokku("plugin:installed", "nosuch").rc == 1
    # the datastore plugins exist only once plugin:install put them in place
    dokku.write_settings(postgres=True)
    assert dokku("plugin:installed", "postgres").rc == 1


def plugin_repo(tmp_path, name: str, versions: list[str]) -> str:
    """A bare git repository holding a plugin.toml per tagged version (as dokku-postgres')."""
    work, bare = tmp_path / f"{name}-work", tmp_path / f"dokku-{name}.git"
    subprocess.run(["git", "init", "-q", "-b", "master", str(work)], check=True)
    for version in versions:
        (work / "plugin.toml").write_text(
            f'[plugin]\ndescription = "dokku {name} service plugin"\nversion = "{version}"\n'
        )
        git = ["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@t"]
        subprocess.run([*git, "add", "plugin.toml"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", version], check=True)
        subprocess.run([*git, "tag", version], check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    return f"file://{bare}"


@pytest.mark.skipif(os.geteuid() != 0, reason="plugin:* must be run as root, as in Dokku")
def test_plugin_install_from_git_with_a_committish(dokku, tmp_path):
    dokku.write_settings(postgres=True)
    url = plugin_repo(tmp_path, "postgres", ["1.41.0", "1.42.0"])
    bad = dokku("plugin:install", "postgres")
    assert bad.rc == 1 and " !     First argument must be --core or url to plugin\n" in bad.stderr
    installed = dokku("plugin:install", url, "--committish", "1.41.0", "--name", "postgres")
    assert installed.rc == 0, installed.stderr
    assert "-----> Cloning plugin repo " in installed.stdout
    assert dokku("plugin:installed", "postgres").rc == 0
    (row,) = [
        r
        for r in json.loads(dokku("plugin:list", "--format", "json").stdout)
        if r["name"] == "postgres"
    ]
    assert (row["version"], row["source_url"], row["committish"]) == ("1.41.0", url, "1.41.0")
    assert dokku("plugin:install", url).stderr == (" !     Plugin postgres is already installed\n")
    assert dokku("plugin:update", "postgres", "1.42.0").rc == 0
    assert "  postgres             1.42.0 enabled" in dokku("plugin:list").stdout
    # a plugin the stand-in does not implement is refused and leaves nothing behind
    other = dokku("plugin:install", plugin_repo(tmp_path, "letsencrypt", ["0.22.0"]))
    assert other.rc == 1 and "cannot run the letsencrypt plugin" in other.stderr
    assert not (dokku.lib / "plugins" / "available" / "letsencrypt").exists()
    assert dokku("plugin:install-dependencies", "--core").rc == 0
    assert (
        (dokku.lib / "data" / "standin" / "dependencies-installed")
        .read_text()
        .endswith(" --core\n")
    )


KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@laptop"
)


@pytest.mark.skipif(os.geteuid() != 0, reason="ssh-keys:add must be run as root, as in Dokku")
def test_ssh_keys_add_and_list(dokku, tmp_path):
    result = dokku("ssh-keys:add", "alice", stdin=KEY + "\n")
    assert result.rc == 0
    fingerprint = result.stdout.strip()
    assert fingerprint.startswith("SHA256:")
    if shutil.which("ssh-keygen"):
        key_file = tmp_path / "key.pub"
        key_file.write_text(KEY + "\n")
        keygen = subprocess.run(
            ["ssh-keygen", "-lf", str(key_file)], capture_output=True, text=True
        )
        assert keygen.stdout.split()[1] == fingerprint
    listed = dokku("ssh-keys:list").stdout
    assert listed == (
        f'{fingerprint} NAME="alice" SSHCOMMAND_ALLOWED_KEYS="no-agent-forwarding,no-user-rc,'
        'no-X11-forwarding,no-port-forwarding"\n'
    )
    again = dokku("ssh-keys:add", "alice", stdin=KEY + "\n")
    assert again.rc == 1
    assert again.stderr == "Duplicate ssh key name\n !     sshcommand returned an error: 1\n"
    invalid = dokku("ssh-keys:add", "bob", stdin="ssh-ed25519 bm90IGEga2V5\n")
    assert invalid.stderr == " !     Key specified in is not a valid ssh public key\n"


def test_git_from_archive_argument_errors(dokku):
    assert dokku("git:from-archive", "ghost", "--").rc == 20
    dokku("apps:create", "app")
    no_url = dokku("git:from-archive", "app")
    assert no_url.stderr == (
        " !     Please specify an archive url or -- to fetch the archive from stdin\n"
    )
    bad_type = dokku("git:from-archive", "--archive-type", "rar", "app", "--")
    assert bad_type.rc == 1 and "valid archive types include: tar, tar.gz, zip" in bad_type.stderr


def test_git_from_archive_rejects_path_traversal(dokku, tmp_path):
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = b"evil"
        info = tarfile.TarInfo("../escape.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    dokku("apps:create", "app")
    result = dokku(
        "git:from-archive", "--archive-type", "tar.gz", "app", "--", stdin=buffer.getvalue()
    )
    assert result.rc == 1
    assert " !     Archive contains entries with parent directory traversal\n" in result.stderr
    assert not (tmp_path / "escape.txt").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="plugin:install must be run as root, as in Dokku")
def test_service_commands_check_names_before_touching_a_server(dokku, tmp_path):
    dokku.write_settings(postgres=True, redis=True)
    assert dokku("postgres:create", "bad name!").stderr.endswith(
        "is not a dokku command.\n !     See `dokku help` for a list of available commands.\n"
    )
    for name in ("postgres", "redis"):
        assert dokku("plugin:install", plugin_repo(tmp_path, name, ["1.0.0"])).rc == 0
    dokku("apps:create", "app")
    bad = dokku("postgres:create", "bad name!")
    assert bad.rc == 1 and "Please specify a valid name for the service" in bad.stderr
    missing = dokku("postgres:exists", "nope")
    assert (missing.rc, missing.stderr) == (1, " !     Postgres service nope does not exist\n")
    assert dokku("redis:link", "nope", "app").stderr == " !     Redis service nope does not exist\n"
    assert dokku("redis:link", "nope", "ghost").rc == 20  # the app is checked first
