"""Outbound HTTP that cannot be pointed at internal systems (SSRF protection), in one place.

:func:`check_url_allowed` accepts only http(s) URLs whose host is on an allowlist and whose
every resolved address is public (not private, loopback, link-local, multicast, reserved
or unspecified) unless ``HTTP_ALLOW_PRIVATE_ADDRESSES`` is on. :func:`safe_fetch` connects
to the exact address that was checked (so a DNS answer cannot change between check and
connect), re-checks every redirect hop, and enforces a size limit and one deadline for the
whole exchange (connect, request, headers, body, every hop). The http_get and web_search tools
and the task callbacks use it; so can any feature that calls user-configured URLs.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx
from django.conf import settings

REDIRECTS = {301, 302, 303, 307, 308}
TIMED_OUT = "the response took longer than the time limit"


class URLNotAllowed(ValueError):
    """The URL may not be fetched; the message says why in one line."""


@dataclass(frozen=True)
class CheckedURL:
    url: str
    scheme: str
    host: str
    port: int
    address: str  # the resolved address the connection must use


@dataclass
class FetchResult:
    url: str
    status: int
    headers: dict[str, str]
    content: bytes
    truncated: bool

    @property
    def text(self) -> str:
        charset = "utf-8"
        for part in self.headers.get("content-type", "").split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.lower() == "charset" and value:
                charset = value.strip('"')
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")


def host_allowed(host: str, allowed_hosts: list[str]) -> bool:
    """Exact names, ``*.example.com`` for subdomains, or ``*`` for any public host."""
    host = host.lower().rstrip(".")
    for entry in (item.lower().strip().rstrip(".") for item in allowed_hosts):
        if entry == "*" or entry == host or (entry.startswith("*.") and host.endswith(entry[1:])):
            return True
    return False


def address_is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
                or ip.is_unspecified or not ip.is_global)


def check_url_allowed(url: str, *, allowed_hosts: list[str] | None = None,
                      allow_private: bool | None = None) -> CheckedURL:
    """Validate ``url`` against the allowlist and resolve it; raises URLNotAllowed."""
    allowed_hosts = settings.HTTP_GET_ALLOWED_HOSTS if allowed_hosts is None else allowed_hosts
    allow_private = settings.HTTP_ALLOW_PRIVATE_ADDRESSES if allow_private is None else allow_private
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        raise URLNotAllowed(f"malformed URL: {error}") from None
    if parts.scheme not in ("http", "https"):
        raise URLNotAllowed(f"only http and https URLs are allowed, not '{parts.scheme or 'none'}'")
    host = (parts.hostname or "").lower()
    if not host:
        raise URLNotAllowed("the URL has no host")
    if parts.username or parts.password:
        raise URLNotAllowed("URLs with credentials are not allowed")
    if not host_allowed(host, allowed_hosts):
        raise URLNotAllowed(f"host '{host}' is not on the allowlist (HTTP_GET_ALLOWED_HOSTS)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise URLNotAllowed(f"cannot resolve host '{host}': {error}") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise URLNotAllowed(f"host '{host}' has no address")
    if not allow_private:
        # Every address must be public: a name with one public and one internal address is refused.
        for address in addresses:
            if not address_is_public(address):
                raise URLNotAllowed(f"host '{host}' resolves to a non-public address ({address})")
    return CheckedURL(url=url, scheme=parts.scheme, host=host, port=port, address=addresses[0])


class _Deadline:
    """One time limit for a whole exchange, however the server paces its bytes.

    httpx's timeouts bound each network operation: a server that sends a byte of its headers
    (or body) every few hundred milliseconds never trips them. So a timer shuts down every
    connection of the exchange when the time is up, which wakes any read or write blocked on
    it; the fetch then fails and :attr:`passed` says it was the deadline. The sockets are
    learnt through httpcore's ``trace`` request extension and duplicated, so the timer never
    touches the objects the fetching thread uses, and a TLS wrap does not hide them.
    """

    def __init__(self, seconds: float):
        self.at = time.monotonic() + seconds
        self.passed = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()

    def remaining(self) -> float:
        left = self.at - time.monotonic()
        if left <= 0:
            raise httpx.ReadTimeout(TIMED_OUT)
        return left

    def trace(self, event: str, info: dict) -> None:
        if event == "connection.connect_tcp.complete":
            sock = info["return_value"].get_extra_info("socket")
            if sock is not None:
                with self._lock:
                    self._sockets.append(sock.dup())
                    if self.passed:
                        _shut_down(self._sockets[-1])

    def _expire(self) -> None:
        with self._lock:
            self.passed = True
            for sock in self._sockets:
                _shut_down(sock)


def _shut_down(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # the connection is gone already
        pass


def _pinned_request(client: httpx.Client, checked: CheckedURL, method: str, headers: dict[str, str],
                    body: bytes | None, deadline: _Deadline) -> httpx.Request:
    parts = urlsplit(checked.url)
    address = f"[{checked.address}]" if ":" in checked.address else checked.address
    target = parts._replace(netloc=f"{address}:{checked.port}").geturl()
    default_port = 443 if checked.scheme == "https" else 80
    host_header = checked.host if checked.port == default_port else f"{checked.host}:{checked.port}"
    # No single operation of a hop may take longer than the time left, so the connect of a late
    # hop (a redirect), before the timer knows its socket, cannot outlast the deadline either.
    return client.build_request(method, target, headers={**headers, "Host": host_header}, content=body,
                                timeout=deadline.remaining(),
                                extensions={"sni_hostname": checked.host, "trace": deadline.trace})


def safe_fetch(url: str, *, method: str = "GET", headers: dict[str, str] | None = None, body: bytes | None = None,
               max_bytes: int | None = None, timeout: float | None = None, max_redirects: int = 3,
               allowed_hosts: list[str] | None = None, allow_private: bool | None = None) -> FetchResult:
    """Fetch ``url`` under the SSRF rules; raises URLNotAllowed or httpx.HTTPError.

    Redirects are followed for GET only, and each hop is checked like the first URL. The whole
    exchange, every hop included, gives up at ``timeout`` with ``httpx.ReadTimeout``.
    """
    max_bytes = max_bytes or settings.HTTP_GET_MAX_BYTES
    timeout = timeout or settings.HTTP_GET_TIMEOUT
    headers = {"User-Agent": "AgentOS/1.0", **(headers or {})}
    with (_Deadline(timeout) as deadline,
          httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client):
        try:
            result = _follow(client, deadline, url, method=method, headers=headers, body=body, max_bytes=max_bytes,
                             max_redirects=max_redirects, allowed_hosts=allowed_hosts, allow_private=allow_private)
        except httpx.HTTPError as error:
            if deadline.passed and not isinstance(error, httpx.TimeoutException):
                # The read or write failed because the timer shut the connection down.
                raise httpx.ReadTimeout(TIMED_OUT) from None
            raise
        if deadline.passed:  # a body without a length ends at the shutdown and looks complete
            raise httpx.ReadTimeout(TIMED_OUT)
        return result


def _follow(client: httpx.Client, deadline: _Deadline, url: str, *, method: str, headers: dict[str, str],
            body: bytes | None, max_bytes: int, max_redirects: int, allowed_hosts: list[str] | None,
            allow_private: bool | None) -> FetchResult:
    for _hop in range(max_redirects + 1):
        checked = check_url_allowed(url, allowed_hosts=allowed_hosts, allow_private=allow_private)
        request = _pinned_request(client, checked, method, headers, body, deadline)
        response = client.send(request, stream=True)
        try:
            location = response.headers.get("location")
            if method == "GET" and response.status_code in REDIRECTS and location:
                url = urljoin(url, location)
                continue
            content, truncated = _read_limited(response, max_bytes)
            return FetchResult(url=url, status=response.status_code,
                               headers={k.lower(): v for k, v in response.headers.items()},
                               content=content, truncated=truncated)
        finally:
            response.close()
    raise URLNotAllowed(f"more than {max_redirects} redirects")


def _read_limited(response: httpx.Response, max_bytes: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            return b"".join(chunks)[:max_bytes], True
    return b"".join(chunks), False
