import time

import pytest

from tools.dispatch import ToolContext, dispatch
from tools.tests.http_server import LocalServer

pytestmark = pytest.mark.django_db
CONTEXT = ToolContext(owner_id=None)


@pytest.fixture
def server():
    with LocalServer() as running:
        yield running


def test_http_get_refuses_loopback_and_metadata_by_default(settings):
    settings.HTTP_GET_ALLOWED_HOSTS = ["127.0.0.1", "169.254.169.254", "localhost"]
    for url in ("http://127.0.0.1/", "http://169.254.169.254/", "http://localhost/"):
        outcome = dispatch(name="http_get", arguments={"url": url}, context=CONTEXT)
        assert (outcome.ok, outcome.error_code) == (False, "tool_error"), url
        assert "non-public address" in outcome.error


def test_http_get_refuses_hosts_off_the_allowlist():
    outcome = dispatch(name="http_get", arguments={"url": "https://example.com/"}, context=CONTEXT)
    assert outcome.error == "http_get: host 'example.com' is not on the allowlist (HTTP_GET_ALLOWED_HOSTS)"


def test_http_get_schema_refuses_other_schemes():
    outcome = dispatch(name="http_get", arguments={"url": "file:///etc/passwd"}, context=CONTEXT)
    assert outcome.error_code == "invalid_arguments"


def test_http_get_fetches_an_allowed_host(settings, server):
    settings.HTTP_GET_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.HTTP_ALLOW_PRIVATE_ADDRESSES = True
    outcome = dispatch(name="http_get", arguments={"url": server.url + "/ok"}, context=CONTEXT)
    assert outcome.ok, outcome.error
    assert outcome.result["status"] == 200 and outcome.result["text"] == "hello from the test server"
    assert outcome.result["truncated"] is False


def test_http_get_timeout(settings, server):
    settings.HTTP_GET_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.HTTP_ALLOW_PRIVATE_ADDRESSES = True
    settings.HTTP_GET_TIMEOUT = 0.3
    outcome = dispatch(name="http_get", arguments={"url": server.url + "/slow"}, context=CONTEXT)
    assert outcome.error == "http_get: no complete answer within 0.3 s"


@pytest.mark.timeout(60)
def test_http_get_timeout_covers_trickling_headers(settings, server):
    settings.HTTP_GET_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.HTTP_ALLOW_PRIVATE_ADDRESSES = True
    settings.HTTP_GET_TIMEOUT = 0.5
    started = time.monotonic()
    outcome = dispatch(name="http_get", arguments={"url": server.url + "/trickle-headers"}, context=CONTEXT)
    assert outcome.error == "http_get: no complete answer within 0.5 s"
    assert time.monotonic() - started < 1.5


def test_web_search_http_backend(settings, server):
    settings.WEB_SEARCH_URL = server.url + "/search"
    settings.HTTP_GET_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.HTTP_ALLOW_PRIVATE_ADDRESSES = True
    outcome = dispatch(name="web_search", arguments={"query": "eiffel tower", "k": 2}, context=CONTEXT)
    assert outcome.ok, outcome.error
    assert outcome.result["source"] == server.url + "/search"
    assert [r["title"] for r in outcome.result["results"]] == ["About eiffel tower"] * 2


def test_web_search_http_backend_obeys_the_allowlist(settings, server):
    settings.WEB_SEARCH_URL = server.url + "/search"
    outcome = dispatch(name="web_search", arguments={"query": "x"}, context=CONTEXT)
    assert outcome.error_code == "tool_error" and "not on the allowlist" in outcome.error
