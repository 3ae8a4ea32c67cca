"""A small OpenAI- and Anthropic-compatible HTTP server on 127.0.0.1 with queued replies.

Tests point the real SDKs at it (``base_url``), so the whole HTTP path runs: request
encoding, retries with backoff, timeouts and error decoding. Each request pops the next
queued :class:`Reply`; every request body is recorded. The reply builders below make every
fault the conformance suite injects: error statuses with ``Retry-After``, stalls
(``delay_s``), HTML or garbled bodies, replies without choices or content, null or partial
usage, truncation (``finish_reason: length`` / ``stop_reason: max_tokens``).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict -> JSON; str -> sent as is
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    content_type: str = "application/json"


# ``usage=DEFAULT`` reports the given token counts; ``None`` leaves usage out; a dict is sent as is.
DEFAULT: Any = object()


def chat_completion(content: str | None, *, prompt_tokens: int = 11, completion_tokens: int = 7,
                    model: str = "fake-model", finish_reason: str = "stop", usage: Any = DEFAULT) -> Reply:
    body: dict[str, Any] = {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "finish_reason": finish_reason,
                     "message": {"role": "assistant", "content": content}}],
    }
    if usage is DEFAULT:
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens}
    if usage is not None:
        body["usage"] = usage
    return Reply(body=body)


def anthropic_message(*, text: str | None = None, tool_input: dict | None = None, input_tokens: int = 13,
                      output_tokens: int = 5, model: str = "fake-claude", stop_reason: str | None = None,
                      usage: Any = DEFAULT) -> Reply:
    content: list[dict] = []
    if text is not None:
        content.append({"type": "text", "text": text})
    if tool_input is not None:
        content.append({"type": "tool_use", "id": "toolu_1", "name": "respond", "input": tool_input})
    body: dict[str, Any] = {
        "id": "msg_1", "type": "message", "role": "assistant", "model": model, "content": content,
        "stop_reason": stop_reason or ("tool_use" if tool_input is not None else "end_turn"), "stop_sequence": None,
    }
    if usage is DEFAULT:
        usage = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    if usage is not None:
        body["usage"] = usage
    return Reply(body=body)


def html_page(status: int = 200) -> Reply:
    """What a proxy or captive portal sends instead of the API's JSON."""
    return Reply(status=status, body="<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>",
                 content_type="text/html")


def error_reply(status: int, message: str, **headers: str) -> Reply:
    return Reply(status=status, body={"error": {"message": message, "type": "error", "code": None}},
                 headers=dict(headers))


class FakeLLMServer:
    """``with FakeLLMServer() as server: server.queue(...)``; ``server.url`` is the base."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def queue(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def __enter__(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _next(self, path: str, body: Any) -> Reply:
        with self._lock:
            self.requests.append({"path": path, "body": body})
            if not self.replies:
                return error_reply(500, "no reply queued", **{"x-should-retry": "false"})
            return self.replies.popleft()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"null")
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                reply = server._next(self.path, body)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                payload = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
                data = payload.encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
