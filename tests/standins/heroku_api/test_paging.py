"""Range / Next-Range paging as the Platform API reference describes it."""

from __future__ import annotations

import pytest

from tests.standins.heroku_api.paging import DEFAULT_MAX, RangeError, page, parse_range

ITEMS = [{"id": f"{i:04d}", "name": f"app-{999 - i}", "version": i} for i in range(450)]


def test_default_page_is_200_with_next_range() -> None:
    status, items, headers = page(ITEMS, None, ["id", "name"])
    assert status == 206
    assert len(items) == DEFAULT_MAX
    assert headers["Next-Range"] == "id ]0199..; max=200"
    assert headers["Content-Range"] == "id 0000..0199"
    assert headers["Accept-Ranges"] == "id, name"


def test_following_next_range_returns_everything_once() -> None:
    seen, header, rounds = [], "id ..; max=7", 0
    while True:
        rounds += 1
        status, items, headers = page(ITEMS, header, ["id"])
        seen.extend(i["id"] for i in items)
        if status != 206:
            assert "Next-Range" not in headers
            break
        header = headers["Next-Range"]
    assert seen == [i["id"] for i in ITEMS]
    assert rounds == 65  # ceil(450 / 7)


def test_small_lists_answer_200() -> None:
    status, items, headers = page(ITEMS[:3], None, ["id"])
    assert (status, len(items)) == (200, 3)
    assert "Next-Range" not in headers


def test_descending_integer_field() -> None:
    status, items, headers = page(ITEMS, "version ..; max=1, order=desc", ["id", "version"])
    assert status == 206
    assert items == [ITEMS[-1]]
    assert headers["Next-Range"] == "version ]449..; max=1, order=desc"
    _, items, _ = page(ITEMS, headers["Next-Range"], ["id", "version"])
    assert items == [ITEMS[-2]]


def test_explicit_window_and_exclusive_start() -> None:
    _, items, _ = page(ITEMS, "id 0010..0012", ["id"])
    assert [i["id"] for i in items] == ["0010", "0011", "0012"]
    _, items, _ = page(ITEMS, "id ]0010..0012", ["id"])
    assert [i["id"] for i in items] == ["0011", "0012"]


def test_aliases_and_ties_keep_creation_order() -> None:
    builds = [
        {"id": "b", "created_at": "2024-01-01T00:00:00Z"},
        {"id": "a", "created_at": "2024-01-01T00:00:00Z"},
    ]
    _, items, _ = page(
        builds,
        "started_at ..; max=1, order=desc",
        ["id", "started_at"],
        {"started_at": "created_at"},
    )
    assert items == [builds[1]]  # the newer of two builds created in the same second


@pytest.mark.parametrize(
    "header",
    [
        "name ..",
        "id ..; max=0",
        "id ..; max=1001",
        "id ..; order=up",
        "id ..; colour=red",
        "nonsense",
        "id 12",
    ],
)
def test_bad_ranges_are_refused(header: str) -> None:
    with pytest.raises(RangeError):
        parse_range(header, ["id"])
