"""Collects the fault suite's figures and prints them at the end of the run."""

import json
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
FIGURES: dict[str, object] = {}


@pytest.fixture(scope="session")
def figures() -> dict[str, object]:
    return FIGURES


def pytest_terminal_summary(terminalreporter):
    if not FIGURES:
        return
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "faults.json").write_text(json.dumps(FIGURES, indent=2, default=str))
    terminalreporter.section("fault suite figures")
    for name, value in FIGURES.items():
        if isinstance(value, list):
            terminalreporter.line(f"{name}:")
            for row in value:
                terminalreporter.line(f"  {row}")
        else:
            terminalreporter.line(f"{name}: {value}")
