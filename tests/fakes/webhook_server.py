"""A local stand-in for a Slack-style incoming webhook: it keeps every JSON body POSTed to it.

Like Slack's, it refuses a body without a `text` field (400 "no_text") and answers "ok" otherwise, so the
real client code (httpx in services/train/monitoring/alerts.py) is checked against the format Slack accepts.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"null")
        except ValueError:
            body = None
        ok = isinstance(body, dict) and isinstance(body.get("text"), str) and body["text"].strip()
        if ok:
            self.server.received.append({"path": self.path, "body": body})  # type: ignore[attr-defined]
        data = b"ok" if ok else b"no_text"
        self.send_response(200 if ok else 400)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        return


@contextmanager
def webhook_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Serve on a free loopback port; yields (webhook URL, accepted POSTs)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/stand-in"
        yield url, server.received  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
