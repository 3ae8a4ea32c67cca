"""A tiny HTTP server on 127.0.0.1 for the outbound-request tests.

Besides well-behaved answers it has two hostile ones that never finish: ``/trickle-headers``
sends the status line and then one header byte every 50 ms, ``/trickle-body`` sends complete
headers announcing a large body and then one body byte every 50 ms (``/trickle-body-unsized``
the same without a length: the body ends with the connection). Each read of the client gets
data in time, so only a deadline on the whole exchange stops them.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        parts = urlsplit(self.path)
        port = self.server.server_address[1]
        self.server.seen.append({"path": self.path, "host": self.headers.get("Host")})
        if parts.path == "/ok":
            return self.reply(200, b"hello from the test server", "text/plain; charset=utf-8")
        if parts.path == "/big":
            return self.reply(200, b"x" * 50_000, "text/plain")
        if parts.path == "/slow":
            time.sleep(2)
            return self.reply(200, b"late", "text/plain")
        if parts.path == "/trickle-headers":
            return self.trickle(b"HTTP/1.1 200 OK\r\nX-Trickle: ", b"a")
        if parts.path == "/trickle-body":
            return self.trickle(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000000\r\n\r\n",
                                b"x")
        if parts.path == "/trickle-body-unsized":  # the body ends when the connection does
            return self.trickle(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n", b"x")
        if parts.path == "/redirect-same":
            return self.redirect("/ok")
        if parts.path == "/redirect-other-host":
            return self.redirect(f"http://localhost:{port}/ok")
        if parts.path == "/redirect-metadata":
            return self.redirect("http://169.254.169.254/latest/meta-data/")
        if parts.path == "/search":
            query = parse_qs(parts.query)
            body = {"results": [{"title": f"About {query['q'][0]}", "url": "https://example.org/a",
                                 "snippet": "A result."}] * int(query["k"][0])}
            return self.reply(200, json.dumps(body).encode(), "application/json")
        return self.reply(404, b"not found", "text/plain")

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.do_GET()

    def trickle(self, head, byte):
        """Write ``head`` as raw bytes, then ``byte`` every 50 ms until the client or the server stops."""
        self.close_connection = True
        try:
            self.wfile.write(head)
            while not self.server.stopping.wait(0.05):
                self.wfile.write(byte)
        except OSError:  # the client hung up
            pass

    def redirect(self, location):
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def reply(self, status, body, content_type):
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


class LocalServer:
    def __enter__(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.seen = []
        self.server.stopping = threading.Event()
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    def __exit__(self, *exc):
        self.server.stopping.set()
        self.server.shutdown()
        self.server.server_close()
