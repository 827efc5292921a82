"""The source_archive module: same content, same bytes; only what git tracks."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args

from tests.unit.conftest import load_module


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture(scope="session")
def sa():
    return load_module("source_archive")


@pytest.fixture
def run_module(sa, capsys):
    """Run the module's main() with args; return its JSON result (failed or not)."""

    def run(check_mode: bool = False, diff: bool = False, **args):
        args = {**args, "_ansible_check_mode": check_mode, "_ansible_diff": diff}
        with patch_module_args(args), pytest.raises(SystemExit):
            sa.main()
        return json.loads(capsys.readouterr().out)

    return run


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A small git repository with a committed tree."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    git(root, "config", "user.email", "test@example.invalid")
    git(root, "config", "user.name", "test")
    (root / "app").mkdir()
    (root / "app" / "main.py").write_text("print('hi')\n")
    (root / "bin").mkdir()
    (root / "bin" / "run").write_text("#!/bin/sh\necho run\n")
    (root / "bin" / "run").chmod(0o755)
    (root / "Procfile").write_text("web: bin/run\n")
    (root / "docs").mkdir()
    (root / "docs" / "big.pdf").write_bytes(b"%PDF" * 100)
    (root / "untracked.txt").write_text("not in git\n")
    git(root, "add", "app", "bin", "Procfile", "docs")
    git(root, "commit", "-q", "-m", "initial")
    return root


def _names(path: str) -> list[str]:
    with tarfile.open(path) as tar:
        return tar.getnames()


def test_archive_has_tracked_files_only_sorted_dirs_first(repo, tmp_path, run_module):
    result = run_module(src=str(repo), dest=str(tmp_path / "out.tar.gz"))
    assert result["changed"] is True
    assert _names(result["path"]) == [
        "Procfile",
        "app",
        "app/main.py",
        "bin",
        "bin/run",
        "docs",
        "docs/big.pdf",
    ]
    assert result["file_count"] == 4
    assert result["version"] == git(repo, "rev-parse", "HEAD").strip()
    data = Path(result["path"]).read_bytes()
    assert result["sha256"] == hashlib.sha256(data).hexdigest()
    assert result["size"] == len(data)


def test_entries_are_normalised(repo, tmp_path, run_module):
    (repo / "Procfile").chmod(0o600)  # odd permissions must not leak into the archive
    result = run_module(src=str(repo), dest=str(tmp_path / "out.tar.gz"))
    with tarfile.open(result["path"]) as tar:
        members = {m.name: m for m in tar.getmembers()}
    for member in members.values():
        assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "", "")
        assert member.mtime == 946684800
    assert members["Procfile"].mode == 0o644
    assert members["bin/run"].mode == 0o755
    assert members["bin"].isdir() and members["bin"].mode == 0o755
    raw = Path(result["path"]).read_bytes()
    assert raw[:2] == b"\x1f\x8b"
    assert raw[3] & 0x08 == 0, "gzip header must not carry a file name"
    assert raw[4:8] == b"\0\0\0\0", "gzip header must not carry a timestamp"


def test_same_content_gives_same_bytes_in_another_clone(repo, tmp_path, run_module):
    first = run_module(src=str(repo), dest=str(tmp_path / "a.tar.gz"))
    clone = tmp_path / "clone"
    old_umask = os.umask(0o077)  # different permissions and fresh mtimes in the clone
    try:
        git(tmp_path, "clone", "-q", str(repo), str(clone))
    finally:
        os.umask(old_umask)
    os.utime(clone / "Procfile", (1, 1))
    second = run_module(src=str(clone), dest=str(tmp_path / "b.tar.gz"))
    assert second["sha256"] == first["sha256"]
    assert Path(first["path"]).read_bytes() == Path(second["path"]).read_bytes()


def test_rerun_unchanged_reports_no_change(repo, tmp_path, run_module):
    dest = str(tmp_path / "out.tar.gz")
    first = run_module(src=str(repo), dest=dest)
    os.utime(repo / "app" / "main.py", (12345, 12345))  # mtime alone is not content
    second = run_module(src=str(repo), dest=dest)
    assert second["changed"] is False
    assert second["sha256"] == first["sha256"]


@pytest.mark.parametrize(
    "change",
    [
        lambda r: (r / "app" / "main.py").write_text("print('bye')\n"),
        lambda r: (r / "Procfile").chmod(0o755),
        lambda r: (r / "bin" / "run").unlink(),
    ],
    ids=["content", "executable-bit", "deleted-file"],
)
def test_a_change_in_content_changes_the_checksum(repo, tmp_path, run_module, change):
    dest = str(tmp_path / "out.tar.gz")
    first = run_module(src=str(repo), dest=dest)
    change(repo)
    second = run_module(src=str(repo), dest=dest, diff=True)
    assert second["changed"] is True
    assert second["sha256"] != first["sha256"]
    assert first["sha256"] in second["diff"]["before"]
    assert second["sha256"] in second["diff"]["after"]


def test_check_mode_hashes_without_writing(repo, tmp_path, run_module):
    real = run_module(src=str(repo), dest=str(tmp_path / "real.tar.gz"))
    dest = tmp_path / "sub" / "checked.tar.gz"
    checked = run_module(src=str(repo), dest=str(dest), check_mode=True)
    assert checked["changed"] is True
    assert checked["sha256"] == real["sha256"]
    assert checked["size"] == real["size"]
    assert not dest.parent.exists()


def test_slugignore_patterns_leave_files_out(repo, tmp_path, run_module):
    (repo / ".slugignore").write_text("# docs are not needed at runtime\ndocs/\n*.md\n")
    (repo / "README.md").write_text("readme\n")
    (repo / "app" / "NOTES.md").write_text("notes\n")
    git(repo, "add", ".slugignore", "README.md", "app/NOTES.md")
    result = run_module(src=str(repo), dest=str(tmp_path / "out.tar.gz"))
    names = _names(result["path"])
    assert "docs/big.pdf" not in names and "docs" not in names
    assert "README.md" not in names and "app/NOTES.md" not in names
    assert ".slugignore" in names and "app/main.py" in names
    assert result["excluded_count"] == 3


def test_explicit_exclude_file_must_exist(repo, tmp_path, run_module):
    result = run_module(
        src=str(repo), dest=str(tmp_path / "o.tar.gz"), exclude_from=str(repo / "nope")
    )
    assert result["failed"] is True
    assert "does not exist" in result["msg"]


def test_negated_pattern_is_refused_with_a_clear_message(repo, tmp_path, run_module):
    (repo / ".slugignore").write_text("docs/\n!docs/keep.pdf\n")
    result = run_module(src=str(repo), dest=str(tmp_path / "out.tar.gz"))
    assert result["failed"] is True
    assert "line 2" in result["msg"] and "not supported" in result["msg"]
    assert not (tmp_path / "out.tar.gz").exists()


def test_not_a_git_work_tree_fails_clearly(tmp_path, run_module):
    plain = tmp_path / "plain"
    plain.mkdir()
    result = run_module(src=str(plain), dest=str(tmp_path / "out.tar.gz"))
    assert result["failed"] is True
    assert "not inside a git work tree" in result["msg"]


def test_repository_without_commit_has_null_version(tmp_path, run_module):
    root = tmp_path / "fresh"
    root.mkdir()
    git(root, "init", "-q")
    (root / "a.txt").write_text("a\n")
    git(root, "add", "a.txt")
    result = run_module(src=str(root), dest=str(tmp_path / "out.tar.gz"))
    assert result["version"] is None
    assert _names(result["path"]) == ["a.txt"]


def test_symlink_is_kept_as_a_link(repo, tmp_path, run_module):
    (repo / "current").symlink_to("app")
    git(repo, "add", "current")
    result = run_module(src=str(repo), dest=str(tmp_path / "out.tar.gz"))
    with tarfile.open(result["path"]) as tar:
        link = tar.getmember("current")
    assert link.issym() and link.linkname == "app"


def test_subdirectory_of_a_repository(repo, tmp_path, run_module):
    result = run_module(src=str(repo / "app"), dest=str(tmp_path / "out.tar.gz"))
    assert _names(result["path"]) == ["main.py"]


def test_archive_extracts_to_the_tracked_content(repo, tmp_path, run_module):
    result = run_module(src=str(repo), dest=str(tmp_path / "out.tar.gz"))
    target = tmp_path / "x"
    with tarfile.open(result["path"]) as tar:
        tar.extractall(target, filter="data")
    assert (target / "bin" / "run").read_text() == (repo / "bin" / "run").read_text()
    assert os.access(target / "bin" / "run", os.X_OK)
    with gzip.open(result["path"]) as handle:
        assert len(handle.read()) % 512 == 0
    shutil.rmtree(target)


@pytest.mark.parametrize(
    ("pattern", "path", "excluded"),
    [
        ("docs", "docs/a.txt", True),
        ("docs", "app/docs/a.txt", True),  # unanchored: any depth
        ("/docs", "app/docs/a.txt", False),  # anchored to the root
        ("app/docs", "app/docs/a.txt", True),
        ("app/docs", "x/app/docs/a.txt", False),
        ("*.pdf", "docs/deep/file.pdf", True),
        ("*.pdf", "docs/deep/file.pdf.txt", False),
        ("docs/", "docs", False),  # a directory pattern does not match a file
        ("docs/", "docs/x", True),
        ("a/*/c", "a/b/c", True),
        ("a/*/c", "a/b/x/c", False),
        ("a/**/c", "a/b/x/c", True),
        ("a/**/c", "a/c", True),
        ("**/tests", "deep/down/tests/t.py", True),
        ("tests/**", "tests/t.py", True),
        ("file?.txt", "file1.txt", True),
        ("file[!0].txt", "file0.txt", False),
        ("file[!0].txt", "file1.txt", True),
        ("# comment", "# comment", False),
    ],
)
def test_pattern_semantics(sa, pattern, path, excluded):
    assert sa.is_excluded(path, sa.compile_patterns([pattern])) is excluded
