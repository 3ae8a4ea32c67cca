import time

import httpx
import pytest

from tools.net import URLNotAllowed, address_is_public, check_url_allowed, host_allowed, safe_fetch
from tools.tests.http_server import LocalServer


@pytest.fixture(scope="module")
def server():
    with LocalServer() as running:
        yield running


@pytest.mark.parametrize(("url", "allowed", "message"), [
    ("http://127.0.0.1/", ["127.0.0.1"], "non-public address (127.0.0.1)"),
    ("http://169.254.169.254/latest/meta-data/", ["169.254.169.254"], "non-public address (169.254.169.254)"),
    ("http://localhost/", ["localhost"], "resolves to a non-public address"),
    ("http://10.0.0.5/", ["*"], "non-public address (10.0.0.5)"),
    ("http://[::1]/", ["::1"], "non-public address (::1)"),
    ("http://[::ffff:127.0.0.1]/", ["::ffff:127.0.0.1"], "non-public address"),
    ("http://2130706433/", ["2130706433"], "non-public address (127.0.0.1)"),
    ("http://0.0.0.0/", ["0.0.0.0"], "non-public address"),
    ("http://224.0.0.1/", ["224.0.0.1"], "non-public address"),
    ("http://example.com/", [], "host 'example.com' is not on the allowlist"),
    ("http://evil.example.net/", ["example.com"], "not on the allowlist"),
    ("ftp://example.com/file", ["example.com"], "only http and https"),
    ("file:///etc/passwd", ["*"], "only http and https"),
    ("http://user:pw@example.com/", ["example.com"], "credentials"),
    ("http:///path", ["*"], "no host"),
])
def test_refused(url, allowed, message):
    with pytest.raises(URLNotAllowed, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_url_allowed(url, allowed_hosts=allowed, allow_private=False)


def test_default_allowlist_is_empty(settings):
    assert settings.HTTP_GET_ALLOWED_HOSTS == []
    with pytest.raises(URLNotAllowed, match="not on the allowlist"):
        check_url_allowed("https://example.com/")


def test_private_addresses_can_be_allowed():
    checked = check_url_allowed("http://127.0.0.1:8080/x", allowed_hosts=["127.0.0.1"], allow_private=True)
    assert (checked.host, checked.port, checked.address) == ("127.0.0.1", 8080, "127.0.0.1")


def test_host_patterns():
    assert host_allowed("api.example.com", ["*.example.com"])
    assert not host_allowed("example.com.evil.net", ["*.example.com"])
    assert not host_allowed("notexample.com", ["*.example.com"])
    assert host_allowed("Example.COM", ["example.com"])


def test_public_addresses():
    assert address_is_public("93.184.216.34")
    assert address_is_public("2606:4700::1111")
    for address in ("127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
                    "::1", "fe80::1", "fc00::1", "::ffff:10.0.0.1"):
        assert not address_is_public(address), address


def fetch(server, path, **kwargs):
    return safe_fetch(server.url + path, allowed_hosts=["127.0.0.1"], allow_private=True, **kwargs)


def test_fetch_ok(server):
    result = fetch(server, "/ok")
    assert (result.status, result.text, result.truncated) == (200, "hello from the test server", False)
    assert server.server.seen[-1]["host"] == f"127.0.0.1:{server.port}"


def test_fetch_size_limit(server):
    result = fetch(server, "/big", max_bytes=2048)
    assert result.truncated and len(result.content) == 2048


def test_fetch_follows_allowed_redirect(server):
    result = fetch(server, "/redirect-same")
    assert result.status == 200 and result.url.endswith("/ok")


def test_fetch_refuses_redirect_to_other_host(server):
    with pytest.raises(URLNotAllowed, match="host 'localhost' is not on the allowlist"):
        fetch(server, "/redirect-other-host")


def test_fetch_refuses_redirect_to_metadata_address(server):
    # Every hop goes through check_url_allowed: the metadata host is not on this allowlist.
    with pytest.raises(URLNotAllowed, match="host '169.254.169.254' is not on the allowlist"):
        fetch(server, "/redirect-metadata")


def test_fetch_timeout(server):
    with pytest.raises(httpx.TimeoutException):
        fetch(server, "/slow", timeout=0.3)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("path", ["/trickle-headers", "/trickle-body", "/trickle-body-unsized"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_fetch_deadline_covers_the_whole_exchange(server, path, method):
    # A byte arrives every 50 ms, so no single read ever waits long: only a deadline on the
    # whole exchange (headers included) ends the call, with the usual timeout error.
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout, match="the response took longer than the time limit"):
        fetch(server, path, method=method, body=b"{}" if method == "POST" else None, timeout=0.5)
    assert 0.5 <= time.monotonic() - started < 1.5
