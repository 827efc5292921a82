"""The role variable docs cannot drift from meta/argument_specs.yml (tools/role_docs.py)."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from tools import role_docs

ROOT = Path(__file__).resolve().parents[2]


def test_readmes_defaults_and_inventory_examples_agree_with_the_specs():
    problems = role_docs.drift()
    assert problems == [], "\n".join(problems)


def test_every_role_is_covered():
    assert {r.name for r in role_docs.roles()} == {
        p.name for p in (ROOT / "roles").iterdir() if p.is_dir()
    }


# -- the checks themselves, on a copy of the repository's roles and inventories ---------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "roles", tmp_path / "roles")
    shutil.copytree(ROOT / "inventories", tmp_path / "inventories")
    assert role_docs.drift(tmp_path) == []
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_a_hand_edited_readme_section_is_drift(repo):
    edit(repo / "roles/local_app/README.md", "| `local_app_port` | int | `5000`", "| port | 5000")
    assert role_docs.drift(repo) == [
        "roles/local_app/README.md: the variables section differs from the specs:"
        " run `make role-docs`"
    ]


def test_a_spec_change_without_regenerating_is_drift(repo):
    edit(repo / "roles/local_app/meta/argument_specs.yml", "Address Gunicorn binds.", "Bind.")
    assert any("local_app/README.md" in p for p in role_docs.drift(repo))


def test_a_default_that_differs_from_its_spec(repo):
    edit(repo / "roles/local_app/defaults/main.yml", "local_app_port: 5000", "local_app_port: 5001")
    assert role_docs.drift(repo) == [
        "roles/local_app/defaults/main.yml: local_app_port is 5001 but the spec's default is 5000"
    ]


def test_a_default_without_a_spec_and_a_spec_without_a_default(repo):
    defaults = repo / "roles/source_archive/defaults/main.yml"
    defaults.write_text(
        defaults.read_text().replace("source_archive_exclude_from:", "source_archive_excludes:")
    )
    assert sorted(role_docs.drift(repo)) == [
        "roles/source_archive/defaults/main.yml: source_archive_exclude_from is optional in"
        " the spec but has no default here (spec: '')",
        "roles/source_archive/defaults/main.yml: source_archive_excludes has no spec in"
        " meta/argument_specs.yml",
    ]


def test_inventory_examples_must_name_variables_with_valid_values(repo):
    path = repo / "inventories/local/group_vars/local.yml"
    path.write_text(
        path.read_text()
        + textwrap.dedent(
            """\
            # local_app_prot: 5000
            # local_app_state: running
            # local_app_memory_mb: two
            # Prose: with a colon is not an example.
            local_app_healthcheck_timeout: [1]
            """
        )
    )
    problems = role_docs.drift(repo)
    assert len(problems) == 4, problems
    assert any("local_app_prot is not a variable" in p for p in problems)
    assert any("local_app_state: 'running' is refused" in p for p in problems)
    assert any("local_app_memory_mb: 'two' is refused" in p for p in problems)
    assert any("setting local_app_healthcheck_timeout: [1] is refused" in p for p in problems)


def test_a_commented_block_is_read_whole(repo):
    path = repo / "inventories/dokku/group_vars/dokku.yml"
    path.write_text(path.read_text() + "# dokku_app_healthcheck_timeout:\n#   seconds: 1\n")
    problems = role_docs.drift(repo)
    assert len(problems) == 1, problems
    assert "dokku_app_healthcheck_timeout: {'seconds': 1} is refused" in problems[0]


def test_the_generator_fills_the_markers(repo):
    role = next(r for r in role_docs.roles(repo) if r.name == "source_archive")
    text = role.readme.read_text()
    section = role_docs.current_section(text)
    role.readme.write_text(text.replace(section, f"{role_docs.BEGIN}\n{role_docs.END}"))
    assert role_docs.write_readme(role) is True
    assert role.readme.read_text() == text
    assert role_docs.write_readme(role) is False
