#!/usr/bin/python
# Copyright: (c) double-boiler contributors
# BSD-2-Clause (see LICENSE)
"""Build a source tarball on Heroku (unless already built) and wait for its release."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: heroku_source_build
short_description: Build and release a source tarball on Heroku, skipping what is already built
author:
  - double-boiler contributors (@double-boiler)
description:
  - Compares the tarball's SHA256 with C(source_blob.checksum) of the app's latest build
    (C(GET /apps/{app}/builds), newest first), and O(stack) and O(buildpacks) with the
    C(stack) and C(buildpacks) that build recorded. When all match and that build and its
    release succeeded, nothing is sent. A matching build still running is waited for.
  - A release whose status is C(expired) had its slug destroyed by Heroku's retention
    policy (releases older than 30 days and than the 20 latest,
    U(https://devcenter.heroku.com/changelog-items/3395)); it did not fail. When the
    app's current release runs that build's slug nothing is done; otherwise the source is
    built again, since an expired slug cannot be released.
  - Otherwise creates upload URLs (C(POST /sources)), uploads the tarball to C(put_url),
    and creates a build (C(POST /apps/{app}/builds)) from C(get_url) with the checksum
    and version.
  - Reads the build's C(output_stream_url) until the build ends and returns its lines; a
    failed build fails with the tail of that output.
  - Follows C(build.release.id) and waits for the release, whose release phase (migrations)
    can fail after a good build. A failed release fails with its output; Heroku keeps the
    previous release serving.
options:
  app:
    description: App name.
    type: str
    required: true
  archive:
    description: Path of the gzipped source tarball (see the source_archive role).
    type: path
    required: true
  sha256:
    description:
      - Expected hex SHA256 of O(archive); required in check mode, when the tarball may
        not have been written. Outside check mode the file must match it.
    type: str
  version:
    description: Source version recorded with the build (a git commit); defaults to the checksum.
    type: str
  stack:
    description:
      - Stack the app builds on (the app's C(build_stack)); a latest build on another stack
        is built again. Omit to compare the checksum only.
    type: str
  buildpacks:
    description:
      - Buildpacks the app builds with, in order (registry names or URLs); a latest build
        made with others is built again. Omit to compare the checksum only.
    type: list
    elements: str
  build_timeout:
    description: Seconds to wait for the build.
    type: int
    default: 1800
  release_timeout:
    description: Seconds to wait for the release (release phase included).
    type: int
    default: 900
  poll_interval:
    description: Seconds between two reads while waiting.
    type: int
    default: 3
extends_documentation_fragment:
  - double_boiler.paas.heroku
  - double_boiler.paas.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Build and release a source tarball made by double_boiler.paas.source_archive
  double_boiler.paas.heroku_source_build:
    app: my-django-app
    archive: /tmp/my-django-app.tar.gz
    sha256: "{{ archive.sha256 }}"
    version: "{{ archive.version }}"
  register: build
"""

RETURN = r"""
build:
  description: C(id), C(status), C(checksum), C(version) of the build used.
  type: dict
  returned: always
release:
  description: C(id), C(version), C(status), C(current) of the build's release.
  type: dict
  returned: always
build_output:
  description: Lines of the build output (empty when the build was skipped).
  type: list
  returned: always
release_output:
  description: Lines of the release phase output, when there is one.
  type: list
  returned: always
skipped_build:
  description: Whether the latest build already had this checksum, stack and buildpacks.
  type: bool
  returned: always
rebuild_reasons:
  description: Why the latest build of this checksum was not reused (stack, buildpacks, expired).
  type: list
  returned: when such a build was built again
api_writes:
  description: Writing requests sent (method and path, upload hosts only).
  type: list
  returned: always
"""

import hashlib
import os
import re
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.double_boiler.paas.plugins.module_utils.common import file_sha256
from ansible_collections.double_boiler.paas.plugins.module_utils.heroku_api import (
    HerokuClient,
    HerokuError,
    NotFound,
    common_argument_spec,
    module_client,
    now,
    tail,
    wait_until,
)

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def _buildpack_ids(value: str | None) -> str | None:
    # Heroku shows registry buildpacks as urn:buildpack:<name> in some answers.
    return value.removeprefix("urn:buildpack:") if value else value


def build_differences(build: dict, stack: str | None, buildpacks: list[str] | None) -> list[str]:
    """What makes `build` not the build wanted now, besides its source (empty: none)."""
    reasons = []
    if stack and build.get("stack") and build["stack"] != stack:
        reasons.append(f"stack {build['stack']} -> {stack}")
    if buildpacks is not None:
        recorded = build.get("buildpacks") or []
        same = len(recorded) == len(buildpacks) and all(
            _buildpack_ids(want) in (_buildpack_ids(bp.get("name")), _buildpack_ids(bp.get("url")))
            for want, bp in zip(buildpacks, recorded, strict=False)
        )
        if not same:
            shown = [_buildpack_ids(bp.get("name") or bp.get("url")) for bp in recorded]
            reasons.append(f"buildpacks {shown} -> {buildpacks}")
    return reasons


def current_release(client: HerokuClient, app: str) -> dict | None:
    path = client.path("apps", app, "releases")
    page = client.list(path, "version ..; max=10, order=desc", all_pages=False)
    return next(
        (r for r in sorted(page, key=lambda r: -r.get("version", 0)) if r.get("current")), None
    )


def find_build(client: HerokuClient, app: str, checksum: str, newer_than: str) -> dict | None:
    """A build of `checksum` created after `newer_than` (the latest before our POST)."""
    path = client.path("apps", app, "builds")
    page = client.list(path, "started_at ..; max=10, order=desc", all_pages=False)
    return next(
        (
            b
            for b in page
            if (b.get("source_blob") or {}).get("checksum") == checksum
            and (b.get("created_at") or "") > newer_than
        ),
        None,
    )


def latest_build(client: HerokuClient, app: str) -> dict | None:
    path = client.path("apps", app, "builds")
    page = client.list(path, "started_at ..; max=1, order=desc", all_pages=False)
    return max(page, key=lambda b: b.get("created_at") or "") if page else None


def _build_summary(build: dict) -> dict:
    blob = build.get("source_blob") or {}
    return {
        "id": build.get("id"),
        "status": build.get("status"),
        "checksum": blob.get("checksum"),
        "version": blob.get("version"),
    }


def _release_summary(release: dict | None) -> dict:
    if not release:
        return {}
    return {k: release.get(k) for k in ("id", "version", "status", "current")}


class Streamer:
    """Accumulates an output stream across reconnects (resuming with a Range header)."""

    def __init__(self, client: HerokuClient, url: str | None):
        self.client, self.url = client, url
        self.offset, self.buffer = 0, b""

    def pull(self, read_timeout: float) -> tuple[int, bool]:
        """Read what is new; return (bytes read, whether the stream ended cleanly)."""
        if not self.url:
            return 0, True
        data, ended = self.client.read_stream(self.url, self.offset, read_timeout)
        self.offset += len(data)
        self.buffer += data
        return len(data), ended

    def lines(self) -> list[str]:
        text = self.buffer.decode("utf-8", "replace")
        lines = [line.rstrip("\r") for line in text.split("\n")]
        return lines[:-1] if text.endswith("\n") else lines


def wait_build(client: HerokuClient, app: str, build: dict, params) -> tuple[dict, list[str]]:
    """Follow the output stream while polling the build; return (build, output lines)."""
    path = client.path("apps", app, "builds", build["id"])
    stream = Streamer(client, build.get("output_stream_url"))
    deadline = now() + params["build_timeout"]
    while build.get("status") == "pending":
        # Heroku holds the stream open until the build ends; a server that answers with
        # what it has so far is simply read again, from where we stopped.
        started = now()
        stream.pull(read_timeout=max(10, params["poll_interval"] * 5))
        build = client.get(path)
        if build.get("status") != "pending":
            break
        if now() >= deadline:
            raise HerokuError(
                f"build {build['id']} still pending after {params['build_timeout']} s; "
                "last output:\n" + tail(stream.lines())
            )
        if now() - started < params["poll_interval"]:
            client.sleep(params["poll_interval"])
    # The stream may still hold the last lines after the status changed.
    for _attempt in range(3):
        _status, ended = stream.pull(read_timeout=10)
        if ended:
            break
    return build, stream.lines()


def wait_release(
    client: HerokuClient, app: str, build: dict, params, want_output: bool
) -> tuple[dict, list[str]]:
    build_path = client.path("apps", app, "builds", build["id"])
    if not (build.get("release") or {}).get("id"):
        # The release id appears once the slug is released; give it a moment.
        build, _elapsed = wait_until(
            lambda: client.get(build_path),
            lambda b: bool((b.get("release") or {}).get("id")),
            min(120, params["release_timeout"]),
            params["poll_interval"],
        )
    release_id = (build.get("release") or {}).get("id")
    if not release_id:
        raise HerokuError(
            f"build {build['id']} succeeded but names no release; check `heroku releases`"
        )
    path = client.path("apps", app, "releases", release_id)
    release, finished = wait_until(
        lambda: client.get(path),
        lambda r: r.get("status") != "pending",
        params["release_timeout"],
        params["poll_interval"],
    )
    output: list[str] = []
    if release.get("output_stream_url") and (want_output or release.get("status") != "succeeded"):
        stream = Streamer(client, release["output_stream_url"])
        for _attempt in range(3):
            if stream.pull(read_timeout=10)[1]:
                break
        output = stream.lines()
    if not finished:
        raise HerokuError(
            f"release v{release.get('version')} still pending after "
            f"{params['release_timeout']} s; release output so far:\n" + tail(output)
        )
    return release, output


def deploy(client: HerokuClient, params, check: bool, result: dict) -> dict:
    """Fill `result` as it goes, so a failure can still return the output seen so far."""
    app, sha = params["app"], params["sha256"]
    checksum = f"SHA256:{sha}"
    try:
        latest = latest_build(client, app)
    except NotFound:
        if not check:
            raise
        latest = None
    result.update(
        build_output=[],
        release_output=[],
        skipped_build=False,
        diff={
            "before": {"checksum": ((latest or {}).get("source_blob") or {}).get("checksum")},
            "after": {"checksum": checksum},
        },
    )
    known_release = None
    reuse = None
    rebuild_reasons = (
        build_differences(latest, params.get("stack"), params.get("buildpacks")) if latest else []
    )
    if rebuild_reasons:
        result["rebuild_reasons"] = rebuild_reasons
        result["diff"]["before"].update(
            stack=latest.get("stack"), buildpacks=latest.get("buildpacks")
        )
        result["diff"]["after"].update(
            stack=params.get("stack"), buildpacks=params.get("buildpacks")
        )
    if (
        latest
        and not rebuild_reasons
        and (latest.get("source_blob") or {}).get("checksum") == checksum
    ):
        status = latest.get("status")
        if status == "pending":
            reuse = latest  # someone (a previous run) is building this very source
        elif status == "succeeded":
            release_id = (latest.get("release") or {}).get("id")
            release = (
                client.get(client.path("apps", app, "releases", release_id)) if release_id else None
            )
            if release is not None and release.get("status") == "expired":
                # Its slug is gone (retention), not failed: fine if the app still runs
                # that slug (a later config-change release of it), else build again.
                current = current_release(client, app)
                slug_id = (latest.get("slug") or {}).get("id")
                if current and slug_id and (current.get("slug") or {}).get("id") == slug_id:
                    reuse, known_release = latest, current
                else:
                    result["rebuild_reasons"] = [
                        f"release v{release.get('version')} of the latest build expired "
                        "(its slug was destroyed) and the app runs another slug"
                    ]
            # A release that failed its release phase is retried with a new build.
            elif release is None or release.get("status") != "failed":
                reuse, known_release = latest, release
    if reuse is not None:
        result["skipped_build"] = True
        result["changed"] = False
        build = reuse
        if check:
            result["build"] = _build_summary(build)
            result["release"] = {}
            return result
        if build.get("status") == "pending":
            build, result["build_output"] = wait_build(client, app, build, params)
    else:
        result["changed"] = True
        if check:
            result["build"] = {"checksum": checksum, "version": params["version"], "status": None}
            result["release"] = {}
            return result
        with open(params["archive"], "rb") as handle:
            data = handle.read()
        if hashlib.sha256(data).hexdigest() != sha:
            raise HerokuError(
                f"{params['archive']} changed while deploying (its SHA256 is no longer {sha}); "
                "run the play again"
            )
        # A second source is only an unused upload URL: safe to create again.
        source = client.create("/sources", {}, lambda: None)
        blob = source.get("source_blob") or {}
        if not blob.get("put_url") or not blob.get("get_url"):
            raise HerokuError("POST /sources returned no put_url/get_url")
        client.upload(blob["put_url"], data)
        newer_than = (latest or {}).get("created_at") or ""
        build = client.create(
            client.path("apps", app, "builds"),
            {
                "source_blob": {
                    "url": blob["get_url"],
                    "checksum": checksum,
                    "version": params["version"],
                }
            },
            lambda: find_build(client, app, checksum, newer_than),
        )
        build, result["build_output"] = wait_build(client, app, build, params)

    result["build"] = _build_summary(build)
    if build.get("status") != "succeeded":
        raise HerokuError(
            f"build {build.get('id')} {build.get('status')}; the app keeps its previous "
            "release. Last build output:\n" + tail(result["build_output"])
        )
    if known_release is not None and known_release.get("status") == "succeeded":
        release = known_release  # already read above: nothing to wait for
    else:
        release, result["release_output"] = wait_release(
            client, app, build, params, want_output=not result["skipped_build"]
        )
    result["release"] = _release_summary(release)
    if release.get("status") != "succeeded":
        raise HerokuError(
            f"release v{release.get('version')} {release.get('status')}: the release phase "
            "(Procfile `release:`) failed after a good build, so the previous release keeps "
            "serving. Release output:\n" + tail(result["release_output"])
        )
    return result


def main() -> None:
    spec = common_argument_spec()
    spec.update(
        archive=dict(type="path", required=True),
        sha256=dict(type="str"),
        version=dict(type="str"),
        stack=dict(type="str"),
        buildpacks=dict(type="list", elements="str"),
        build_timeout=dict(type="int", default=1800),
        release_timeout=dict(type="int", default=900),
        poll_interval=dict(type="int", default=3),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    client = module_client(module)
    p = dict(module.params)
    if p["sha256"] is not None and not SHA256_RE.match(p["sha256"]):
        module.fail_json(msg=f"sha256 {p['sha256']!r} is not 64 lowercase hex digits")
    if module.check_mode and p["sha256"] is None:
        module.fail_json(msg="sha256 is required in check mode (pass source_archive.sha256)")
    if not module.check_mode:
        if not os.path.isfile(p["archive"]):
            module.fail_json(msg=f"archive {p['archive']} does not exist: build it first")
        actual = file_sha256(p["archive"])
        if p["sha256"] and actual != p["sha256"]:
            module.fail_json(
                msg=f"archive {p['archive']} has SHA256 {actual}, not {p['sha256']}: rebuild it"
            )
        p["sha256"] = actual
    p["version"] = p["version"] or p["sha256"]
    if p["build_timeout"] < 1 or p["release_timeout"] < 1 or p["poll_interval"] < 1:
        module.fail_json(msg="build_timeout, release_timeout and poll_interval must be >= 1")
    started = time.monotonic()
    result: dict = {}
    try:
        deploy(client, p, module.check_mode, result)
    except HerokuError as exc:
        result.pop("diff", None)
        module.fail_json(msg=str(exc), api_writes=client.writes, **result)
    result["elapsed"] = round(time.monotonic() - started, 1)
    if not module._diff:
        result.pop("diff")
    module.exit_json(api_writes=client.writes, **result)


if __name__ == "__main__":
    main()
