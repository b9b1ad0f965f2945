"""A throw-away redis-server for tests and benches: free port, password, own folder, as prod.sh runs it."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from scripts.harness.processes import free_port, start, stop


@dataclass(frozen=True)
class RedisServer:
    """Where the throw-away Redis listens and its password."""

    port: int
    password: str

    def url(self, db: int = 1) -> str:
        """The USER_STORE_URL of one database (1: the users' database of the prod shape)."""
        return f"redis://:{self.password}@127.0.0.1:{self.port}/{db}"


@contextmanager
def redis_server(home: Path) -> Iterator[RedisServer]:
    """Run redis-server until the block ends; the password goes in a mode-600 config file."""
    home.mkdir(parents=True, exist_ok=True)
    server = RedisServer(free_port(), secrets.token_hex(12))
    conf = home / "redis.conf"
    conf.write_text(
        f"bind 127.0.0.1\nport {server.port}\nprotected-mode yes\nrequirepass {server.password}\n"
        f'dir {home}\nsave ""\nappendonly no\ndaemonize no\n'
    )
    conf.chmod(0o600)
    proc = start(["redis-server", str(conf)], dict(os.environ), home / "redis.log")
    client = redis.Redis.from_url(server.url(0))
    try:
        for _ in range(200):
            if proc.poll() is not None:
                raise RuntimeError((home / "redis.log").read_text()[-2000:])
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                time.sleep(0.05)
        else:
            raise TimeoutError("redis-server did not answer PING")
        yield server
    finally:
        client.close()
        stop(proc)
