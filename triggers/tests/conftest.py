"""Fixtures of the triggers tests: a signed-request helper, a loopback receiver, workers."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from triggers import signing


def signed_post(client, webhook, payload, *, secret=None, timestamp=None, raw: bytes | None = None, headers=None):
    """POST ``payload`` (or ``raw`` bytes) to the hook, signed like a real sender would."""
    body = raw if raw is not None else json.dumps(payload).encode()
    header = signing.sign(secret=secret or webhook.secret, body=body, timestamp=timestamp)
    return client.post(f"/hooks/{webhook.pk}/", data=body, content_type="application/json",
                       headers={signing.SIGNATURE_HEADER: header, **(headers or {})})


@pytest.fixture
def webhook(user):
    from triggers.models import Webhook

    return Webhook.objects.create(owner=user, name="ci", options={"allow_human": False})


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST and answers with scripted statuses."""

    statuses: list[int] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    received: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/callback"

    def wait_for(self, count: int, timeout: float = 30) -> list[dict]:
        with self.received:
            self.received.wait_for(lambda: len(self.requests) >= count, timeout)
        return list(self.requests)


@pytest.fixture
def receiver():
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status < 300 else b"receiver failure")
            with state.received:
                state.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                       "status": status})
                state.received.notify_all()

        def log_message(self, *args):
            pass

    state.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=state.server.serve_forever, daemon=True)
    thread.start()
    yield state
    state.server.shutdown()
    state.server.server_close()
    thread.join(5)


@pytest.fixture
def callback_worker(transactional_db):
    """A worker allowed to reach loopback callbacks, retrying after a fraction of a second."""
    from agentos.testing import process_env, start_worker

    env = process_env(HTTP_ALLOW_PRIVATE_ADDRESSES="1", CALLBACK_ALLOWED_HOSTS="127.0.0.1",
                      CALLBACK_RETRY_BASE_SECONDS="0.3")
    process = start_worker(env=env)
    yield process
    process.stop()
