"""The Platform API client: auth, retries, paging, errors, secrecy."""

from __future__ import annotations

import email.utils

import pytest
from ansible_collections.double_boiler.paas.plugins.module_utils.common import MASK

from tests.support.fake_heroku import API, BLOBS, TOKEN, Fault


def test_requests_carry_the_v3_accept_header_and_bearer_token(client, heroku):
    heroku.add_app()
    client.get("/apps/double-boiler")
    call = heroku.calls[-1]
    assert call.headers["Accept"] == "application/vnd.heroku+json; version=3"
    assert call.headers["Authorization"] == f"Bearer {TOKEN}"


def test_token_is_never_sent_to_other_hosts(client, heroku):
    client.upload(f"{BLOBS}/abc?sig=put", b"tarball")
    call = heroku.calls[-1]
    assert "Authorization" not in call.headers
    assert call.headers["Content-Type"] == ""  # what a pre-signed PUT was signed with
    client.read_stream(f"{BLOBS}/abc?sig=get")
    assert "Authorization" not in heroku.calls[-1].headers


def test_a_look_alike_host_does_not_get_the_token(api, heroku, fake_time):
    c = api.HerokuClient(api_url=API + ".evil.test", token=TOKEN, transport=heroku)
    assert not c._is_api_url(API + "/apps")
    c2 = api.HerokuClient(api_url=API, token=TOKEN, transport=heroku)
    assert not c2._is_api_url(API.replace("https", "http") + "/apps")
    assert c2._is_api_url(API + "/apps")


def test_429_is_retried_after_the_retry_after_seconds(client, heroku, fake_time):
    heroku.add_app()
    heroku.faults.append(Fault("GET", "/apps/double-boiler$", 429, {"retry-after": "7"}, times=2))
    app = client.get("/apps/double-boiler")
    assert app["name"] == "double-boiler"
    assert fake_time.sleeps == [7, 7]
    assert len(heroku.calls) == 3


def test_retry_after_as_http_date(client, heroku, fake_time):
    heroku.add_app()
    when = email.utils.formatdate(fake_time.now + 12, usegmt=True)
    heroku.faults.append(Fault("GET", "/apps/", 429, {"retry-after": when}))
    client.get("/apps/double-boiler")
    assert fake_time.sleeps and 11 <= fake_time.sleeps[0] <= 12


def test_503_backs_off_exponentially_without_retry_after(client, heroku, fake_time):
    heroku.add_app()
    heroku.faults.append(Fault("GET", "/apps/", 503, times=3))
    client.get("/apps/double-boiler")
    assert fake_time.sleeps == [1, 2, 4]


def test_gives_up_after_max_retries_with_a_clear_message(client, heroku, fake_time):
    heroku.add_app()
    client.max_retries = 2
    heroku.faults.append(Fault("GET", "/apps/", 503, times=10))
    with pytest.raises(client_error_type()) as err:
        client.get("/apps/double-boiler")
    assert "503" in str(err.value)
    assert len(heroku.calls) == 3


def test_a_huge_retry_after_fails_instead_of_hanging(client, heroku, fake_time):
    heroku.add_app()
    heroku.faults.append(Fault("GET", "/apps/", 429, {"retry-after": "3600"}))
    with pytest.raises(client_error_type()) as err:
        client.get("/apps/double-boiler")
    assert "3600" in str(err.value) and "run it again later" in str(err.value)
    assert fake_time.sleeps == []


def test_500_on_post_is_not_retried_but_on_get_it_is(client, heroku, fake_time):
    heroku.faults.append(Fault("POST", "/apps$", 500))
    with pytest.raises(client_error_type()):
        client.post("/apps", {"name": "double-boiler"})
    assert len(heroku.calls) == 1 and fake_time.sleeps == []
    heroku.add_app()
    heroku.faults.append(Fault("GET", "/apps/", 500))
    client.get("/apps/double-boiler")
    assert fake_time.sleeps == [1]


def test_503_on_a_plain_post_is_not_sent_again(api, client, heroku, fake_time):
    # issue 10 item 6: the 503 may come after the API created the app
    heroku.faults.append(Fault("POST", "/apps$", 503, after=True))
    with pytest.raises(api.HerokuAPIError, match="503"):
        client.post("/apps", {"name": "double-boiler"})
    assert [c.method for c in heroku.calls] == ["POST"]


def test_create_reads_back_before_sending_a_post_again(client, heroku, fake_time):
    heroku.faults.append(Fault("POST", "/apps$", 503, after=True))
    app = client.create(
        "/apps", {"name": "double-boiler"}, lambda: client.get_or_none("/apps/double-boiler")
    )
    assert app["name"] == "double-boiler"
    assert [f"{c.method} {c.path}" for c in heroku.calls] == [
        "POST /apps",
        "GET /apps/double-boiler",
    ]


def test_create_sends_again_when_the_read_back_finds_nothing(client, heroku, fake_time):
    heroku.faults.append(Fault("POST", "/apps$", 503))  # refused before any work
    client.create(
        "/apps", {"name": "double-boiler"}, lambda: client.get_or_none("/apps/double-boiler")
    )
    assert [c.method for c in heroku.calls] == ["POST", "GET", "POST"]
    assert client.writes == ["POST /apps"]


def test_create_does_not_retry_a_4xx(api, client, heroku, fake_time):
    heroku.add_app()
    with pytest.raises(api.HerokuAPIError, match="422"):
        client.create("/apps", {"name": "double-boiler"}, lambda: None)
    assert [c.method for c in heroku.calls] == ["POST"]


def test_low_ratelimit_remaining_slows_down(client, heroku, fake_time):
    heroku.add_app()
    heroku.rate_limit_remaining = 8
    client.get("/apps/double-boiler")
    assert fake_time.sleeps == [pytest.approx(2 * 0.8)]
    heroku.rate_limit_remaining = 4000
    client.get("/apps/double-boiler")
    assert len(fake_time.sleeps) == 1


def test_list_follows_next_range_on_206(client, heroku):
    heroku.add_app()
    heroku.page_size = 2
    for n in range(5):
        heroku.addons["double-boiler"].append({"id": f"id-{n}", "name": f"a{n}"})
    items = client.list("/apps/double-boiler/addons")
    assert [i["id"] for i in items] == [f"id-{n}" for n in range(5)]
    ranges = [c.headers.get("Range") for c in heroku.calls]
    assert ranges[0] is None
    assert ranges[1:] == ["id ]start=2; max=2", "id ]start=4; max=2"]


def test_list_first_page_only_with_a_range(client, heroku):
    heroku.add_app()
    for n in range(3):
        heroku.addons["double-boiler"].append({"id": f"id-{n}", "name": f"a{n}"})
    items = client.list("/apps/double-boiler/addons", "id ..; max=1, order=desc", all_pages=False)
    assert [i["id"] for i in items] == ["id-2"]
    assert len(heroku.calls) == 1


def test_errors_say_what_happened_and_never_contain_the_token(api, heroku, fake_time):
    c = api.HerokuClient(
        api_url=API, token="wrong-" + TOKEN, transport=heroku, sleep=fake_time.sleep
    )
    with pytest.raises(api.HerokuAPIError) as err:
        c.get("/apps/double-boiler")
    text = str(err.value)
    assert "401" in text and "unauthorized" in text and "HEROKU_API_KEY" in text
    assert TOKEN not in text


def test_404_raises_not_found_and_get_or_none_returns_none(client, api):
    with pytest.raises(api.NotFound):
        client.get("/apps/nope-app")
    assert client.get_or_none("/apps/nope-app") is None


def test_non_json_answer_is_reported(api, fake_time):
    def transport(method, url, headers, body, timeout):
        return api.Response(200, {}, b"<html>proxy login</html>")

    c = api.HerokuClient(api_url=API, token=TOKEN, transport=transport, sleep=fake_time.sleep)
    with pytest.raises(api.HerokuAPIError, match="not JSON"):
        c.get("/apps/x")


def test_transport_errors_retry_idempotent_requests_then_fail_clearly(api, fake_time):
    attempts = []

    def transport(method, url, headers, body, timeout):
        attempts.append(method)
        raise api.TransportError("connection refused")

    c = api.HerokuClient(
        api_url=API, token=TOKEN, transport=transport, sleep=fake_time.sleep, max_retries=2
    )
    with pytest.raises(api.HerokuError, match="no answer"):
        c.get("/apps/x")
    assert attempts == ["GET"] * 3
    attempts.clear()
    with pytest.raises(api.HerokuError):
        c.post("/apps", {})
    assert attempts == ["POST"]


def test_read_stream_resumes_with_a_range(client, heroku):
    url = "https://streams.fake-heroku.test/builds/x"
    heroku.streams[url] = b"line 1\nline 2\n"
    data, ended = client.read_stream(url)
    assert data == b"line 1\nline 2\n" and ended
    heroku.streams[url] += b"line 3\n"
    data, _ = client.read_stream(url, offset=14)
    assert data == b"line 3\n"
    assert heroku.calls[-1].headers["Range"] == "bytes=14-"


def test_read_stream_skips_what_it_has_when_range_is_ignored(api, fake_time):
    def transport(method, url, headers, body, timeout):
        return api.Response(200, {}, b"abcdef")

    c = api.HerokuClient(api_url=API, token=TOKEN, transport=transport)
    assert c.read_stream("https://s.test/x", offset=4)[0] == b"ef"


@pytest.mark.parametrize(
    ("key", "sensitive"),
    [
        ("DJANGO_SECRET_KEY", True),
        ("DATABASE_URL", True),
        ("REDIS_URL", True),
        ("SENTRY_DSN", True),
        ("API_TOKEN", True),
        ("ALLOWED_HOSTS", False),
        ("WEB_CONCURRENCY", False),
        ("DJANGO_HTTPS_ONLY", False),
    ],
)
def test_sensitive_names(api, key, sensitive):
    assert api.is_sensitive(key) is sensitive


def test_mask_config(api):
    masked = api.mask_config({"A": "1", "DATABASE_URL": "postgres://u:p@h/d", "X": "s"}, ["X"])
    assert masked == {"A": "1", "DATABASE_URL": MASK, "X": MASK}


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("double-boiler", True),
        ("ab", False),
        ("abc", True),
        ("Abc", False),
        ("a" * 30, True),
        ("a" * 31, False),
        ("abc-", False),
        ("1abc", False),
        ("a_bc", False),
    ],
)
def test_app_name_rule(api, name, ok):
    params = {"app": name, "api_key": "t", "api_url": API, "request_timeout": 30, "max_retries": 1}
    assert (api.check_common(params) is None) is ok


def client_error_type():
    from ansible_collections.double_boiler.paas.plugins.module_utils.heroku_api import (
        HerokuAPIError,
    )

    return HerokuAPIError


def test_upload_sends_no_token_even_on_the_api_origin(client, heroku):
    client.upload(f"{API}/__blobs__/abc?sig=put", b"tarball")
    call = heroku.calls[-1]
    assert "Authorization" not in call.headers
    assert client.writes == [f"PUT {API}/..."]  # the capability path is not logged


def test_read_stream_reports_a_dropped_connection(api):
    def transport(method, url, headers, body, timeout):
        return api.Response(200, {}, b"partial li", partial=True)

    c = api.HerokuClient(api_url=API, token=TOKEN, transport=transport)
    assert c.read_stream("https://s.test/x") == (b"partial li", False)
