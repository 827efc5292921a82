# Copyright: (c) double-boiler contributors
# BSD-2-Clause (see LICENSE)
"""What several double_boiler.paas modules share: checksums, secrets and their mask."""

from __future__ import annotations

import hashlib
import secrets

# The one mask every module shows in place of a secret value (diffs, messages, results).
MASK = "********"


def file_sha256(path: str) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks; FileNotFoundError when it is absent."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def generate_secret(length: int = 64) -> str:
    """`length` URL-safe characters from the OS CSPRNG: no quoting issue anywhere."""
    if length < 1:
        raise ValueError("a secret needs at least one character")
    return secrets.token_urlsafe(length)[:length]


def mask_values(text: str, hidden: set[str] | frozenset[str]) -> str:
    """Replace every hidden value in text with MASK, longest first, so a secret that
    contains another is masked whole."""
    for value in sorted(hidden, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text
