"""`ansible-galaxy collection build` builds double_boiler.paas with every plugin in it."""

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml

from tests.unit.conftest import COLLECTIONS_PATH, PLUGINS

COLLECTION = COLLECTIONS_PATH / "ansible_collections" / "double_boiler" / "paas"


def test_the_collection_builds_with_every_plugin(tmp_path: Path):
    galaxy = yaml.safe_load((COLLECTION / "galaxy.yml").read_text())
    run = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-galaxy"), "collection", "build",
         "--output-path", str(tmp_path), str(COLLECTION)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    built = tmp_path / f"double_boiler-paas-{galaxy['version']}.tar.gz"
    with tarfile.open(built) as tarball:
        names = set(tarball.getnames())
        manifest = json.load(tarball.extractfile("MANIFEST.json"))
    assert manifest["collection_info"]["version"] == galaxy["version"]
    plugins = {f"plugins/{p.relative_to(PLUGINS)}" for p in PLUGINS.rglob("*.py")}
    assert plugins <= names
    assert "meta/runtime.yml" in names
    assert not [n for n in names if n.startswith("tests/output") or n.endswith(".pyc")]
