"""A TCP proxy in front of the real S3 server that holds one upload in flight: a window to crash in.

Fault injection for tests/serve/test_durability.py. Bytes pass both ways unchanged (the client's SigV4
signature covers the Host header, which the proxy does not touch) until the proxy is armed. After that,
the first request whose request line is a PUT under `prefix` is held, as `hold` says:
- "request": it never reaches S3 (the object is not there; the client waits for an answer);
- "answer": it reaches S3 in full and S3's answer is kept from the client (the object is there; the
  client still waits).
`held` is set at that moment, with the object's key (and S3's status line), so a test can kill the
client inside the window and know it did.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from urllib.parse import unquote, urlsplit

_PUT = re.compile(rb"(?:^|\r\n)PUT (/[^ ?]+)[^ ]* HTTP/1\.1\r\n")


class HoldingProxy:
    """Forward 127.0.0.1:port to an S3 endpoint; once armed, hold the answer to the first matching PUT."""

    def __init__(self, endpoint: str, prefix: str, hold: str = "answer") -> None:
        assert hold in ("request", "answer"), hold
        self.hold = hold
        target = urlsplit(endpoint)
        self.upstream = (target.hostname or "127.0.0.1", target.port or 80)
        self.prefix = prefix  # a path, /bucket/key-prefix
        self.armed = threading.Event()
        self.held = threading.Event()
        self.held_key = ""  # the object's key, without the bucket
        self.held_status = ""  # S3's status line for a held answer, which the client never saw
        self._claim = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, name="s3-hold-proxy", daemon=True).start()

    def close(self) -> None:
        """Stop listening and drop every connection."""
        for s in [self._listener, *self._sockets]:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            upstream = socket.create_connection(self.upstream)
            self._sockets += [client, upstream]
            holding = threading.Event()  # this connection carries the held request
            threading.Thread(target=self._requests, args=(client, upstream, holding), daemon=True).start()
            threading.Thread(target=self._answers, args=(upstream, client, holding), daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket, holding: threading.Event) -> None:
        while data := _recv(client):
            if self.armed.is_set() and not holding.is_set():
                m = _PUT.search(data)
                path = unquote(m.group(1).decode()) if m else ""
                if path.startswith(self.prefix) and self._claim.acquire(blocking=False):
                    self.held_key = path.split("/", 2)[2]
                    holding.set()  # before S3 can answer: its answer must not slip through
                    if self.hold == "request":
                        self.held.set()
            if holding.is_set() and self.hold == "request":
                continue  # S3 never sees it
            upstream.sendall(data)
        with contextlib.suppress(OSError):
            upstream.shutdown(socket.SHUT_WR)

    def _answers(self, upstream: socket.socket, client: socket.socket, holding: threading.Event) -> None:
        while data := _recv(upstream):
            if holding.is_set() and not data.startswith(b"HTTP/1.1 100"):
                if not self.held.is_set():
                    self.held_status = data.split(b"\r\n", 1)[0].decode()
                    self.held.set()
                continue  # S3 answered; the client never hears it
            with contextlib.suppress(OSError):
                client.sendall(data)
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_WR)


def _recv(s: socket.socket) -> bytes:
    try:
        return s.recv(65536)
    except OSError:
        return b""
