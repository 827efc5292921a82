#!/usr/bin/python
# Copyright: (c) double-boiler contributors
# BSD-2-Clause (see LICENSE)
"""Deterministic tar.gz of the git-tracked files of a work tree."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: source_archive
short_description: Build a deterministic tar.gz of the git-tracked files of a directory
author:
  - double-boiler contributors (@double-boiler)
description:
  - Archives the files git tracks under O(src) (their working-tree content), minus the
    patterns of a C(.slugignore) file, into a gzipped tarball whose bytes depend only on
    that content and the files' executable bits.
  - Entries are sorted, owned by uid/gid 0 with empty user and group names, dated
    O(mtime), with modes normalised to 0644 (0755 for executables and directories);
    the gzip header carries no file name and a zero timestamp. The same content
    therefore always gives the same bytes and the same SHA256.
  - Runs on the controller (delegate it to localhost).
options:
  src:
    description: Directory inside a git work tree; only files tracked by git under it are archived.
    type: path
    required: true
  dest:
    description: Path of the tarball to write; parent directories are created.
    type: path
    required: true
  exclude_from:
    description:
      - File of C(.slugignore) patterns (gitignore syntax without negation) to leave out.
      - Defaults to C(<src>/.slugignore) when that file exists; an explicit path must exist.
    type: path
  mtime:
    description: Modification time (seconds since the epoch) given to every entry.
    type: int
    default: 946684800
extends_documentation_fragment:
  - double_boiler.paas.attributes
attributes:
  check_mode:
    support: full
    details: The archive is hashed in memory; nothing is written.
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Archive the repository
  double_boiler.paas.source_archive:
    src: "{{ playbook_dir }}"
    dest: /tmp/source.tar.gz
  delegate_to: localhost
"""

RETURN = r"""
path:
  description: Path of the tarball.
  type: str
  returned: always
sha256:
  description: Hex SHA256 of the tarball's bytes.
  type: str
  returned: always
size:
  description: Size of the tarball in bytes.
  type: int
  returned: always
file_count:
  description: Number of files and symbolic links in the tarball.
  type: int
  returned: always
excluded_count:
  description: Number of tracked files left out by the exclusion patterns.
  type: int
  returned: always
version:
  description: Commit of the work tree's HEAD, or null when the repository has no commit yet.
  type: str
  returned: always
"""

import gzip
import hashlib
import os
import re
import stat
import tarfile
import tempfile
from collections.abc import Iterable

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.double_boiler.paas.plugins.module_utils.common import file_sha256

DEFAULT_MTIME = 946684800  # 2000-01-01: after the ZIP epoch, so tools that zip sources work


class ExcludeError(ValueError):
    """A pattern file line that cannot be honoured."""


def _translate(glob: str) -> str:
    """Translate a gitignore glob (no leading/trailing slash) into a regex body."""
    out: list[str] = []
    i, n = 0, len(glob)
    while i < n:
        c = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("/**", i) and i + 3 == n:
            out.append("/.*")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            # a ']' right after '[' (or '[!') belongs to the class
            first = i + 2 if glob[i + 1 : i + 2] in ("!", "^") else i + 1
            end = glob.find("]", first + 1)
            if end == -1:
                out.append(re.escape(c))
                i += 1
            else:
                body = glob[i + 1 : end]
                if body[:1] in ("!", "^"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end + 1
        elif c == "\\" and i + 1 < n:
            out.append(re.escape(glob[i + 1]))
            i += 2
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


def compile_patterns(lines: Iterable[str]) -> list[tuple[re.Pattern[str], bool]]:
    """Compile .slugignore lines into (regex, directory_only) pairs."""
    compiled = []
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not line.endswith("\\ "):
            line = line.rstrip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("!"):
            raise ExcludeError(
                f"line {number}: negated pattern {line!r} is not supported by .slugignore; "
                "remove it or narrow the pattern it was meant to override"
            )
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        if not line:
            continue
        anchored = "/" in line
        body = _translate(line.lstrip("/"))
        prefix = "" if anchored else "(?:.*/)?"
        compiled.append((re.compile(f"^{prefix}{body}$", re.DOTALL), dir_only))
    return compiled


def is_excluded(path: str, patterns: list[tuple[re.Pattern[str], bool]]) -> bool:
    """True when the file or one of its parent directories matches a pattern."""
    parts = path.split("/")
    for depth in range(1, len(parts) + 1):
        candidate = "/".join(parts[:depth])
        is_dir = depth < len(parts)
        for regex, dir_only in patterns:
            if dir_only and not is_dir:
                continue
            if regex.match(candidate):
                return True
    return False


class _Sink:
    """File-like target for gzip that hashes (and optionally writes) what it gets."""

    def __init__(self, fileobj=None):
        self.fileobj = fileobj
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        self.sha256.update(data)
        self.size += len(data)
        if self.fileobj is not None:
            self.fileobj.write(data)
        return len(data)

    def flush(self) -> None:
        if self.fileobj is not None:
            self.fileobj.flush()


def _tarinfo(name: str, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def collect_entries(src: str, paths: Iterable[str], patterns) -> tuple[list[tuple], int]:
    """Return sorted (name, kind, abspath) entries and how many paths were excluded."""
    files: dict[str, tuple[str, str]] = {}
    excluded = 0
    for rel in set(paths):
        if is_excluded(rel, patterns):
            excluded += 1
            continue
        full = os.path.join(src, rel)
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            continue  # tracked but deleted in the work tree: not part of the content
        if stat.S_ISLNK(st.st_mode):
            files[rel] = ("symlink", full)
        elif stat.S_ISREG(st.st_mode):
            files[rel] = ("exec" if st.st_mode & 0o111 else "file", full)
        # anything else (a submodule's directory) is not content of this repository
    dirs = set()
    for rel in files:
        parts = rel.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:depth]))
    entries = [(d, "dir", os.path.join(src, d)) for d in dirs]
    entries += [(rel, kind, full) for rel, (kind, full) in files.items()]
    entries.sort(key=lambda e: e[0].split("/"))
    return entries, excluded


def write_archive(entries, sink: _Sink, mtime: int) -> int:
    """Write entries as a deterministic tar.gz into sink; return the file count."""
    count = 0
    # filename="" keeps the gzip header free of a name; mtime=0 of a timestamp.
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=sink, mtime=0, compresslevel=9) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name, kind, full in entries:
            info = _tarinfo(name, mtime)
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
                continue
            count += 1
            if kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.mode = 0o777
                info.linkname = os.readlink(full)
                tar.addfile(info)
                continue
            info.mode = 0o755 if kind == "exec" else 0o644
            with open(full, "rb") as handle:
                info.size = os.fstat(handle.fileno()).st_size
                tar.addfile(info, handle)
    return count


def _file_sha256(path: str) -> str | None:
    try:
        return file_sha256(path)
    except FileNotFoundError:
        return None


def _git(module: AnsibleModule, git: str, src: str, *args: str, check: bool = True):
    rc, out, err = module.run_command([git, *args], cwd=src, encoding=None)
    if check and rc != 0:
        text = err.decode("utf-8", "replace").strip()
        hint = ""
        if "dubious ownership" in text:
            hint = f" Run: git config --global --add safe.directory {src}"
        module.fail_json(msg=f"git {' '.join(args)} failed in {src}: {text}.{hint}")
    return rc, out


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path", required=True),
            dest=dict(type="path", required=True),
            exclude_from=dict(type="path"),
            mtime=dict(type="int", default=DEFAULT_MTIME),
        ),
        supports_check_mode=True,
    )
    src = os.path.realpath(module.params["src"])
    dest = module.params["dest"]
    if not os.path.isdir(src):
        module.fail_json(msg=f"src {src} is not a directory: point src at the repository to deploy")
    if module.params["mtime"] < 0:
        module.fail_json(msg="mtime must be a non-negative number of seconds since the epoch")

    git = module.get_bin_path("git", required=True)
    rc, out = _git(module, git, src, "rev-parse", "--is-inside-work-tree", check=False)
    if rc != 0 or out.strip() != b"true":
        module.fail_json(
            msg=f"src {src} is not inside a git work tree: only git-tracked files "
            "are archived, so run `git init` and add the files, or fix src"
        )
    _rc, listing = _git(module, git, src, "ls-files", "-z", "--cached")
    paths = [p.decode("utf-8", "surrogateescape") for p in listing.split(b"\0") if p]
    rc, head = _git(module, git, src, "rev-parse", "--verify", "-q", "HEAD", check=False)
    version = head.decode().strip() if rc == 0 and head.strip() else None

    exclude_from = module.params["exclude_from"]
    if exclude_from is None:
        candidate = os.path.join(src, ".slugignore")
        exclude_from = candidate if os.path.isfile(candidate) else None
    elif not os.path.isfile(exclude_from):
        module.fail_json(msg=f"exclude_from {exclude_from} does not exist: create it or drop it")
    patterns = []
    if exclude_from:
        with open(exclude_from, encoding="utf-8") as handle:
            try:
                patterns = compile_patterns(handle)
            except ExcludeError as exc:
                module.fail_json(msg=f"{exclude_from}: {exc}")

    entries, excluded = collect_entries(src, paths, patterns)
    before = _file_sha256(dest)
    mtime = module.params["mtime"]

    if module.check_mode:
        sink = _Sink()
        file_count = write_archive(entries, sink, mtime)
    else:
        parent = os.path.dirname(os.path.abspath(dest))
        os.makedirs(parent, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".source_archive.", dir=parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                sink = _Sink(handle)
                file_count = write_archive(entries, sink, mtime)
            if sink.sha256.hexdigest() == before:
                os.unlink(tmp)
            else:
                os.chmod(tmp, 0o644)
                os.replace(tmp, dest)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    sha256 = sink.sha256.hexdigest()
    changed = sha256 != before
    module.exit_json(
        changed=changed,
        path=dest,
        sha256=sha256,
        size=sink.size,
        file_count=file_count,
        excluded_count=excluded,
        version=version,
        diff={
            "before_header": dest,
            "after_header": dest,
            "before": f"sha256: {before}\n" if before else "",
            "after": f"sha256: {sha256}\n",
        },
    )


if __name__ == "__main__":
    main()
