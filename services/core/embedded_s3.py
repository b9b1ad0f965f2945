"""Start, probe and stop the embedded S3 server (SeaweedFS `weed mini`) on loopback.

Used by scripts/s3.sh for local runs and by the tests for a real, throw-away S3 server.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

log = logging.getLogger(__name__)

# weed mini opens the S3, master, volume, filer and admin servers, each with a gRPC twin at +10000.
_PORT_OFFSETS = {"s3": 0, "master": 1, "volume": 2, "filer": 3, "admin": 4}
_GRPC_OFFSET = 10000


@dataclass
class EmbeddedS3:
    """One weed mini process: where it keeps data, which port it serves S3 on, its keys."""

    data_dir: Path
    port: int
    access_key: str
    secret_key: str
    bucket: str
    host: str = "127.0.0.1"
    # Every bucket is a SeaweedFS collection with a volume of its own, and by default the number of
    # volumes is free disk / volume size: ~68 here, which the test suite's per-test buckets used up
    # ("no free volumes left"). Volumes are sparse files, so a fixed ceiling costs no disk.
    max_volumes: int = 1000

    @property
    def endpoint(self) -> str:
        """The S3 endpoint URL."""
        return f"http://{self.host}:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "weed.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "weed.log"

    def command(self) -> list[str]:
        """The weed mini command line."""
        weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
        ports = {name: self.port + off for name, off in _PORT_OFFSETS.items()}
        return [
            weed, "mini", f"-dir={self.data_dir / 'data'}", f"-ip={self.host}",
            f"-ip.bind={self.host}", f"-s3.port={ports['s3']}", f"-master.port={ports['master']}",
            f"-volume.port={ports['volume']}", f"-filer.port={ports['filer']}",
            f"-admin.port={ports['admin']}", "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-webdav=false", "-admin.ui=false", "-master.telemetry=false", f"-volume.max={self.max_volumes}",
        ]  # fmt: skip

    def start(self, timeout_s: float = 30.0) -> int:
        """Start weed mini in the background (it outlives this process); returns its pid."""
        if self.running():
            return int(self.pid_file.read_text())
        (self.data_dir / "data").mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "S3_BUCKET": self.bucket,
        }
        with open(self.log_file, "ab") as out:
            proc = subprocess.Popen(
                self.command(), env=env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        self.pid_file.write_text(str(proc.pid))
        self.wait_ready(timeout_s, proc)
        return proc.pid

    def wait_ready(self, timeout_s: float, proc: subprocess.Popen | None = None) -> None:
        """Block until the S3 port answers HTTP and the bucket exists."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"weed mini exited with {proc.returncode}; see {self.log_file}")
            try:
                httpx.get(self.endpoint, timeout=1.0)
                if self._bucket_ready():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"S3 on {self.endpoint} not ready after {timeout_s}s; see {self.log_file}")

    def _bucket_ready(self) -> bool:
        from services.core.settings import Settings
        from services.core.storage import ObjectStore

        settings = Settings(
            s3_endpoint_url=self.endpoint,
            s3_bucket=self.bucket,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            s3_max_attempts=1,
        )
        try:
            ObjectStore.from_settings(settings).ensure_bucket()
            return True
        except Exception:  # noqa: BLE001 - not ready yet, any error means "try again"
            return False

    def running(self) -> bool:
        """Whether the recorded pid is alive."""
        if not self.pid_file.exists():
            return False
        try:
            os.kill(int(self.pid_file.read_text()), 0)
            return True
        except (ProcessLookupError, ValueError):
            return False

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Stop the server (SIGTERM, then SIGKILL); returns whether one was running."""
        if not self.running():
            self.pid_file.unlink(missing_ok=True)
            return False
        pid = int(self.pid_file.read_text())
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.running():
            time.sleep(0.2)
        if self.running():
            os.killpg(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True


def free_port_block(start: int = 20000, end: int = 40000) -> int:
    """A base port whose S3/master/volume/filer/admin ports and gRPC twins are all free."""
    for base in range(start + (os.getpid() * 7) % 1000 * 10, end, 10):
        ports = [base + o for o in _PORT_OFFSETS.values()]
        ports += [p + _GRPC_OFFSET for p in ports]
        if all(_free(p) for p in ports):
            return base
    raise RuntimeError("no free port block for the embedded S3 server")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def main(argv: list[str] | None = None) -> int:
    """CLI behind scripts/s3.sh: start | stop | status, configured from the environment."""
    parser = argparse.ArgumentParser(
        prog="s3.sh", description="The embedded S3 server (SeaweedFS) on 127.0.0.1."
    )
    parser.add_argument("action", choices=["start", "stop", "status"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    server = EmbeddedS3(
        data_dir=Path(os.environ["S3_DATA_DIR"]),
        port=int(os.environ.get("S3_PORT", "8333")),
        access_key=os.environ["AWS_ACCESS_KEY_ID"],
        secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        bucket=os.environ.get("S3_BUCKET", "movie-intel"),
    )
    if args.action == "start":
        pid = server.start()
        log.info("S3 up at %s (bucket %s, pid %d, data %s)", server.endpoint, server.bucket, pid,
                 server.data_dir)  # fmt: skip
    elif args.action == "stop":
        log.info("S3 stopped" if server.stop() else "S3 was not running")
    else:
        if not server.running():
            log.info("S3 not running (data in %s)", server.data_dir)
            return 1
        log.info("S3 running at %s, pid %s", server.endpoint, server.pid_file.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
