"""module_utils/common.py: what the Heroku, Dokku and local modules share."""

from __future__ import annotations

import hashlib

import pytest
from ansible_collections.double_boiler.paas.plugins.module_utils.common import (
    MASK,
    file_sha256,
    generate_secret,
    mask_values,
)

URLSAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@pytest.mark.parametrize("length", [1, 50, 64, 100])
def test_generated_secret_has_the_length_asked_random_and_urlsafe(length):
    first, second = generate_secret(length), generate_secret(length)
    assert len(first) == len(second) == length
    assert set(first) <= URLSAFE
    if length >= 50:
        assert first != second


def test_a_secret_of_no_character_is_refused():
    with pytest.raises(ValueError, match="at least one"):
        generate_secret(0)


def test_file_sha256_reads_big_files_in_blocks(tmp_path):
    data = b"x" * (3 << 20) + b"tail"
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert file_sha256(str(path)) == hashlib.sha256(data).hexdigest()
    with pytest.raises(FileNotFoundError):
        file_sha256(str(tmp_path / "missing"))


def test_mask_values_masks_the_longest_secret_whole():
    text = "short=abcd long=abcdefgh other"
    assert mask_values(text, {"abcd", "abcdefgh"}) == f"short={MASK} long={MASK} other"
    assert mask_values(text, set()) == text
