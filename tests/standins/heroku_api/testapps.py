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


# A web app that answers with what it received, for the router's tests.
ECHO_APP = {
    ".python-version": "3.11\n",
    "requirements.txt": "# nothing to install\n",
    "Procfile": ('release: test -n "$GREETING"\nweb: exec python echo.py\n'),
    "echo.py": """\
import http.server, json, os, time, urllib.parse


class Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/sleep":
            time.sleep(float(urllib.parse.parse_qs(url.query)["seconds"][0]))
        body = json.dumps({
            "headers": dict(self.headers.items()),
            "peer_port": self.client_address[1],
            "dyno": os.environ["DYNO"],
            "release": os.environ.get("HEROKU_RELEASE_VERSION", ""),
            "greeting": os.environ.get("GREETING"),
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


server = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Echo)
server.daemon_threads = True
server.serve_forever()
""",
}
