"""git:from-archive and git:report, after Dokku's git plugin.

The app directory is a bare git repository, as on Dokku. `git:from-archive` extracts the
archive (with Dokku's archive safety checks), commits it on the deploy branch and builds
that commit; identical content prints "No changes detected, skipping git commit" on stderr
and exits 1 (git-from-directory returns 1; Dokku's archive page says it exits 0, its code
does not). A failed build or deploy moves the branch back, so the same archive can be
deployed again later.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

from . import out
from .build import BuildError, build
from .core import Context, report_command
from .deploy import release_and_deploy

MAX_SIZE = 1073741824
MAX_FILES = 10000


def _git(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})}
    return subprocess.run(
        ["git", "-c", f"safe.directory={cwd}", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env=full_env,
    )


def deploy_branch(ctx: Context, app: str) -> str:
    return (
        ctx.props.get("git", app, "deploy-branch")
        or ctx.props.get("git", "--global", "deploy-branch")
        or "master"
    )


def _extract_tar(data: bytes, dest: Path, gz: bool) -> int:
    mode = "r:gz" if gz else "r:"
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode=mode) as tar:
            members = tar.getmembers()
            if len(members) > MAX_FILES:
                raise out.fail(
                    f"Archive contains {len(members)} entries which exceeds the maximum of"
                    f" {MAX_FILES}"
                )
            for member in members:
                name = member.name
                if name.startswith("/"):
                    raise out.fail("Archive contains entries with absolute paths")
                if ".." in name.split("/"):
                    raise out.fail("Archive contains entries with parent directory traversal")
                if member.issym():
                    if member.linkname.startswith("/"):
                        raise out.fail("Archive contains symlinks with absolute targets")
                    if ".." in member.linkname:
                        raise out.fail(
                            "Archive contains symlinks pointing outside extraction directory"
                        )
            strip = 0
            if not gz:
                # Dokku strips the directory prefix every entry shares (a character-wise
                # common prefix, as its sed does; only its slashes count).
                strip = os.path.commonprefix([m.name for m in members]).count("/")  # noqa: RUF071
                out.verbose(f"Striping {strip} worth of directories from tarball")
            else:
                out.verbose("Extracting gzipped tarball")
            for member in members:
                parts = member.name.split("/")[strip:]
                if not parts or parts == [""]:
                    continue
                member.name = "/".join(parts)
                _extract_member(tar, member, dest)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise out.fail(f"Unable to extract the archive: {exc}") from None
    return strip


def _extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path) -> None:
    # The extraction filters (PEP 706) exist only in newer 3.11 point releases.
    if hasattr(tarfile, "tar_filter"):
        tar.extract(member, dest, filter="tar")
    else:
        tar.extract(member, dest)


def _extract_zip(data: bytes, dest: Path) -> None:
    out.verbose("Extracting zipball")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for name in archive.namelist():
                if name.startswith("/") or ".." in name.split("/"):
                    raise out.fail("Archive contains entries with parent directory traversal")
            archive.extractall(dest)  # noqa: S202 - names were checked just above
    except zipfile.BadZipFile as exc:
        raise out.fail(f"Unable to extract the archive: {exc}") from None


def cmd_from_archive(ctx: Context, argv: list[str]) -> None:
    archive_type = "tar"
    args: list[str] = []
    skip = False
    for arg in argv:
        if arg == "--archive-type":
            skip = True
            continue
        if skip:
            archive_type, skip = arg, False
            continue
        args.append(arg)
    app = args[0] if args else ""
    url = args[1] if len(args) > 1 else ""
    user_name = args[2] if len(args) > 2 and args[2] else "Dokku"
    user_email = args[3] if len(args) > 3 and args[3] else "automated@dokku.sh"
    ctx.verify_app(app)
    if not url:
        raise out.fail("Please specify an archive url or -- to fetch the archive from stdin")
    if archive_type not in ("tar", "tar.gz", "zip"):
        raise out.fail(
            "Invalid archive type specified, valid archive types include: tar, tar.gz, zip"
        )

    if url == "--":
        out.info1(f"Fetching {archive_type} file from stdin")
        data = sys.stdin.buffer.read()
        out.log(str(len(data)))
    else:
        out.info1(f"Downloading {archive_type} file from {url}")
        try:
            with urllib.request.urlopen(url, timeout=300) as response:
                data = response.read()
        except OSError as exc:
            raise out.fail(f"Unable to download {url}: {exc}") from None
    if len(data) > MAX_SIZE:
        raise out.fail(f"Archive exceeds maximum allowed size of {MAX_SIZE} bytes")

    out.info1("Generating build context")
    with tempfile.TemporaryDirectory(prefix="dokku-standin-archive-") as tmp:
        extracted = Path(tmp) / "extracted"
        extracted.mkdir()
        if archive_type == "zip":
            _extract_zip(data, extracted)
        else:
            _extract_tar(data, extracted, gz=archive_type == "tar.gz")
        entries = list(extracted.iterdir())
        if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
            out.verbose("Stripping top-level archive folder components")
            source = entries[0]
        else:
            out.verbose("Moving unarchived files and folders into place")
            source = extracted
        with ctx.app_lock(app):
            code = from_directory(ctx, app, source, user_name, user_email)
    if code:
        raise out.DokkuExit(code)


def from_directory(ctx: Context, app: str, source: Path, user_name: str, user_email: str) -> int:
    """git-from-directory: commit `source` on the deploy branch, then build and deploy."""
    root = ctx.paths.app(app)
    branch = deploy_branch(ctx, app)
    if not (root / "HEAD").exists():
        _git("init", "--bare", "--quiet", f"--initial-branch={branch}", ".", cwd=root)
    has_code = (
        _git("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", cwd=root).returncode == 0
    )
    out.info1("Updating git repository with specified build context")
    ident = {
        "GIT_AUTHOR_NAME": user_name,
        "GIT_AUTHOR_EMAIL": user_email,
        "GIT_COMMITTER_NAME": user_name,
        "GIT_COMMITTER_EMAIL": user_email,
    }
    with tempfile.TemporaryDirectory(prefix="dokku-standin-git-") as tmp:
        work = Path(tmp) / "work"
        shutil.copytree(source, work, symlinks=True)
        if has_code:
            clone = Path(tmp) / "clone"
            _git("clone", "--quiet", str(root), str(clone), cwd=Path(tmp))
            shutil.move(str(clone / ".git"), str(work / ".git"))
            _git("add", "--all", cwd=work)
            _git("update-index", "--refresh", cwd=work)
            if _git("diff-index", "--quiet", "HEAD", "--", cwd=work).returncode == 0:
                out.warn("No changes detected, skipping git commit")
                out.warn("Call 'ps:rebuild' on app to rebuild the app from existing source")
                return 1
            message = f"Automated commit @ {int(time.time())}"
        else:
            _git("init", "--quiet", f"--initial-branch={branch}", cwd=work)
            _git("add", "--all", cwd=work)
            message = "Initial commit"
        commit = _git("commit", "--quiet", "--no-verify", "-m", message, cwd=work, env=ident)
        if commit.returncode != 0:
            raise out.fail(f"Unable to commit the build context: {commit.stderr.strip()}")
        rev = _git("rev-parse", "HEAD", cwd=work).stdout.strip()
        push = _git("push", "--quiet", "--force", str(root), f"HEAD:refs/heads/{branch}", cwd=work)
        if push.returncode != 0:
            raise out.fail(f"Unable to update the app repository: {push.stderr.strip()}")
    _git("symbolic-ref", "HEAD", f"refs/heads/{branch}", cwd=root)

    code = receive(ctx, app, rev)
    if code:
        if has_code:
            _git("update-ref", f"refs/heads/{branch}", f"{branch}^", cwd=root)
        else:
            _git("update-ref", "-d", f"refs/heads/{branch}", cwd=root)
    return code


def receive(ctx: Context, app: str, rev: str) -> int:
    """git_build: record GIT_REV, build the commit, release and deploy it."""
    from .configcmd import set_many

    env = ctx.load_env(None)
    if "CURL_CONNECT_TIMEOUT" not in env or "CURL_TIMEOUT" not in env:
        # builder-herokuish pre-build sets these global defaults
        quiet_before = os.environ.get("DOKKU_QUIET_OUTPUT")
        os.environ["DOKKU_QUIET_OUTPUT"] = "1"
        set_many(
            ctx,
            None,
            {
                "CURL_CONNECT_TIMEOUT": env.get("CURL_CONNECT_TIMEOUT", "90"),
                "CURL_TIMEOUT": env.get("CURL_TIMEOUT", "600"),
            },
            restart=False,
        )
        _restore_quiet(quiet_before)
    rev_var = ctx.props.get("git", app, "rev-env-var", "GIT_REV")
    if rev_var:
        quiet_before = os.environ.get("DOKKU_QUIET_OUTPUT")
        os.environ["DOKKU_QUIET_OUTPUT"] = "1"
        set_many(ctx, app, {rev_var: rev}, restart=False)
        _restore_quiet(quiet_before)
    try:
        build_no = build(ctx, app, rev)
    except BuildError as exc:
        out.warn(str(exc))
        out.warn("App build failed")
        return 1
    return release_and_deploy(ctx, app, build_no)


def _restore_quiet(value: str | None) -> None:
    if value is None:
        os.environ.pop("DOKKU_QUIET_OUTPUT", None)
    else:
        os.environ["DOKKU_QUIET_OUTPUT"] = value


def git_report_flags(ctx: Context):  # type: ignore[no-untyped-def]
    def sha(app: str) -> str:
        result = _git("rev-parse", "HEAD", cwd=ctx.paths.app(app))
        return result.stdout.strip() if result.returncode == 0 else ""

    def last_updated(app: str) -> str:
        head = ctx.paths.app(app) / "refs" / "heads" / deploy_branch(ctx, app)
        return str(int(head.stat().st_mtime)) if head.exists() else ""

    def flags_for(app: str) -> dict:
        flags = {
            "--git-computed-deploy-branch": lambda a: deploy_branch(ctx, a),
            "--git-global-deploy-branch": lambda a: ctx.props.get(
                "git", "--global", "deploy-branch"
            ),
            "--git-computed-keep-git-dir": lambda a: (
                ctx.props.get("git", a, "keep-git-dir") or "false"
            ),
            "--git-global-keep-git-dir": lambda a: ctx.props.get("git", "--global", "keep-git-dir"),
            "--git-computed-archive-max-files": lambda a: str(MAX_FILES),
            "--git-computed-archive-max-size": lambda a: str(MAX_SIZE),
            "--git-global-archive-max-files": lambda a: "",
            "--git-global-archive-max-size": lambda a: "",
        }
        if app != "--global":
            flags.update(
                {
                    "--git-deploy-branch": lambda a: ctx.props.get("git", a, "deploy-branch"),
                    "--git-keep-git-dir": lambda a: ctx.props.get("git", a, "keep-git-dir"),
                    "--git-last-updated-at": last_updated,
                    "--git-rev-env-var": lambda a: ctx.props.get("git", a, "rev-env-var"),
                    "--git-sha": sha,
                    "--git-source-image": lambda a: ctx.props.get("git", a, "source-image"),
                }
            )
        return flags

    return flags_for


def cmd_report(ctx: Context, argv: list[str]) -> None:
    report_command(ctx, "git", argv, git_report_flags(ctx))
