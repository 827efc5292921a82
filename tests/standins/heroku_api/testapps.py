"""Source trees the stand-in's tests build (as gzipped tarballs)."""

from __future__ import annotations

import io
import tarfile


def make_tarball(files: dict[str, str], top: str | None = None) -> bytes:
    """A gzipped tarball of ``files`` (optionally under one top-level directory)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{name}" if top else name)
            info.size = len(data)
            info.mode = 0o755 if name.startswith("bin/") else 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# A tiny app the Python buildpack steps can build fast: no dependencies to download.
TINY_APP = {
    ".python-version": "3.11\n",
    "requirements.txt": "# nothing to install\n",
    "Procfile": (
        'release: echo "release phase for $DYNO" && test -n "$GREETING"\n'
        "web: exec python -m http.server --bind 127.0.0.1 $PORT\n"
        "worker: exec sleep 100000\n"
    ),
    "index.html": "tiny app\n",
}
