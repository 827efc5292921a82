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


def upload_and_build(
    client, app: str, tarball: bytes, version: str = "v1", checksum: str | None = None
) -> dict:
    """POST /sources, PUT the tarball, POST a build; return the build (pending)."""
    import hashlib

    blob = client.ok("POST", "/sources")["source_blob"]
    put = client.raw("PUT", blob["put_url"], tarball, {"Content-Type": ""})
    assert put.status == 200, put
    digest = checksum or "SHA256:" + hashlib.sha256(tarball).hexdigest()
    return client.ok(
        "POST",
        f"/apps/{app}/builds",
        {
            "source_blob": {"url": blob["get_url"], "checksum": digest, "version": version},
        },
    )


def finish_build(client, app: str, build: dict, timeout: float = 600) -> tuple[dict, str]:
    """Read the whole output stream, then return (the finished build, its output)."""
    output = client.stream_text(build["output_stream_url"], timeout=timeout)
    done = client.wait(
        lambda: client.ok("GET", f"/apps/{app}/builds/{build['id']}"),
        lambda b: b["status"] != "pending",
        timeout,
    )
    return done, output


def finish_release(client, app: str, release_id: str, timeout: float = 120) -> dict:
    return client.wait(
        lambda: client.ok("GET", f"/apps/{app}/releases/{release_id}"),
        lambda r: r["status"] != "pending",
        timeout,
    )
