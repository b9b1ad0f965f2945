"""A local stand-in for Google Translate's mobile page, which deep-translator's GoogleTranslator parses.

It answers GET /m?sl=auto&tl=en&q=TEXT with the HTML element the real client looks for, so the
real client code runs end to end without the internet. Known phrases get a fixed English text;
anything else comes back tagged, so a test can tell it was translated.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

KNOWN = {
    "가족": "A moving story of a man who risks everything to protect his family. Love, courage and sacrifice.",
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        query = parse_qs(urlparse(self.path).query)
        text = (query.get("q") or [""])[0]
        english = next((v for k, v in KNOWN.items() if k in text), f"[translated] {text}")
        body = f'<html><body><div class="result-container">{html.escape(english)}</div></body></html>'
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.server.requests.append(text)  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        return


@contextmanager
def translate_server() -> Iterator[tuple[str, list[str]]]:
    """Serve on a free loopback port; yields (base_url, texts received)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/m", server.requests  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
