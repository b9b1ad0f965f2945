"""`./scripts/demo.sh`, the README's first command, run as a user runs it, and stopped as a user stops it.

The clone is a `git clone` of this checkout with its uncommitted changes laid over it (the tree about to
be committed), in a shell with none of the project's variables. What differs from a first run on a new
machine, and why: `.venv` links to this checkout's env (setup.sh's ~3 min install is not repeated);
every port is moved to a free one (SERVE_PORT, UI_PORT, AIRFLOW_PORT, S3_PORT and Airflow's two log
servers) so the run collides with nothing; RECOMMENDER_MAX_EPOCHS=3 caps the one pipeline run's training
(the default budget is ~5 min of SASRec); HOME is a folder of its own.

Every process the demo starts inherits a marker in its environment, so "nothing remains" is checked on
all of them, those that left demo.sh's process group (setsid) or were re-parented included.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from scripts.harness import processes
from services.core.embedded_s3 import _GRPC_OFFSET, _PORT_OFFSETS, free_port_block
from tests.conftest import ROOT
from tests.user_shell import user_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

UP = "Movie intelligence is up"
FIRST_RUN_S = 1500  # the one pipeline run plus every part's start, on a busy 2-core machine


@dataclass
class Clone:
    """A clean clone with its own ports and the marker its processes carry."""

    root: Path
    env: dict[str, str]
    ports: dict[str, int]
    mark: str

    def web(self, name: str) -> str:
        """http://127.0.0.1:PORT of a part."""
        return f"http://127.0.0.1:{self.ports[name]}"

    def all_ports(self) -> list[int]:
        """Every port the stack listens on: the three parts', Airflow's log servers, each of weed mini's."""
        s3 = [self.ports["s3"] + off for off in _PORT_OFFSETS.values()]
        return [p for name, p in self.ports.items() if name != "s3"] + s3 + [p + _GRPC_OFFSET for p in s3]


def _clone(dest: Path) -> None:
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(dest)], check=True, timeout=120)
    # The working tree's changes (modified, untracked but not ignored, deleted) over the clone's checkout.
    changed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--modified", "--others", "--exclude-standard"],
        check=True, capture_output=True, timeout=60,
    ).stdout.decode().split("\0")  # fmt: skip
    for rel in filter(None, changed):
        src, dst = ROOT / rel, dest / rel
        if src.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
        else:
            dst.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clone]:
    """One clone for the module: the first demo run fills its var/ (the registry) for the later ones."""
    base = tmp_path_factory.mktemp("demo")
    root = base / "movie-intel"
    _clone(root)
    (root / ".venv").symlink_to((ROOT / ".venv").resolve(), target_is_directory=True)
    ports = {"s3": free_port_block()}
    while len(set(ports.values())) < 6:  # five distinct free ports beside the S3 block
        ports = {
            "s3": ports["s3"],
            **{n: processes.free_port() for n in ("api", "ui", "airflow", "logs", "tlogs")},
        }
    mark = secrets.token_hex(8)
    env = user_env(
        base / "home",
        SERVE_PORT=str(ports["api"]), UI_PORT=str(ports["ui"]), AIRFLOW_PORT=str(ports["airflow"]),
        S3_PORT=str(ports["s3"]), AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(ports["logs"]),
        AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(ports["tlogs"]), RECOMMENDER_MAX_EPOCHS="3",
        DEMO_TEST_MARK=mark,
    )  # fmt: skip
    yield Clone(root, env, ports, mark)
    for pid in _stack(mark):  # only after a failed test: the tests themselves check nothing is left
        _kill(pid)


def _processes(mark: str) -> list[tuple[int, int, bool, str]]:
    """(pid, session id, started with the marker?, command line) of every live process this user can read."""
    found = []
    needle = f"DEMO_TEST_MARK={mark}".encode()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            session = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[3])
            marked = needle in (proc / "environ").read_bytes()
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:200]
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile, or not ours to read
        found.append((int(proc.name), session, marked, command))
    return found


def _stack(mark: str, sessions: Collection[int] = ()) -> dict[int, str]:
    """pid -> command of the demo's processes: those with the marker, and any in a session one of them led.

    The sessions matter because setproctitle rewrites the memory /proc shows as a process's environment:
    Airflow's API server and log servers lose the marker that way.
    """
    return {pid: cmd for pid, sid, marked, cmd in _processes(mark) if marked or sid in sessions}


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _listening(ports: list[int]) -> list[int]:
    """The ports on which something accepts a connection."""
    taken = []
    for port in ports:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                taken.append(port)
    return taken


def _terminal_signals() -> None:
    # A shell gives its foreground job the default SIGINT; a test runner started in the background of a
    # non-interactive shell passes SIGINT on ignored, and bash cannot trap a signal ignored at its start.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Demo:
    """demo.sh as a terminal's foreground job: a session of its own, its output read line by line."""

    def __init__(self, clone: Clone, **env: str) -> None:
        self.proc = subprocess.Popen(
            [str(clone.root / "scripts" / "demo.sh")], cwd=clone.root, env={**clone.env, **env},
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True, preexec_fn=_terminal_signals,
        )  # fmt: skip
        self.mark = clone.mark
        self.lines: list[str] = []
        self.settled = threading.Event()  # the "up" line was printed, or the output ended
        self.sessions: set[int] = set()  # every session a marked process was seen in, while demo.sh ran
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        while self.proc.poll() is None:
            self.sessions |= {sid for _, sid, marked, _ in _processes(self.mark) if marked}
            time.sleep(0.5)

    def leftovers(self) -> dict[int, str]:
        """pid -> command of the processes the demo started that are still alive."""
        return _stack(self.mark, self.sessions)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if UP in line:
                self.settled.set()
        self.settled.set()

    @property
    def output(self) -> str:
        """Everything demo.sh printed so far."""
        return "".join(self.lines)

    def ctrl_c(self, timeout_s: float = 120) -> int:
        """SIGINT to the process group, as Ctrl-C in a terminal sends it; returns the exit status."""
        os.killpg(self.proc.pid, signal.SIGINT)
        return self.proc.wait(timeout=timeout_s)

    def wait_exit(self, timeout_s: float) -> int:
        """The exit status once demo.sh ends by itself."""
        return self.proc.wait(timeout=timeout_s)

    def stop(self) -> None:
        """After a failed test: Ctrl-C, then SIGKILL, so the next test starts clean."""
        if self.proc.poll() is None:
            try:
                self.ctrl_c(timeout_s=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        for pid in self.leftovers():
            _kill(pid)


def _assert_nothing_left(clone: Clone, demo: Demo) -> None:
    assert demo.leftovers() == {}, f"still running after demo.sh exited:\n{demo.output[-3000:]}"
    assert _listening(clone.all_ports()) == [], demo.output[-3000:]


def test_demo_comes_up_answers_and_ctrl_c_stops_everything(clone: Clone) -> None:
    demo = Demo(clone)
    try:
        assert demo.settled.wait(FIRST_RUN_S), f"no '{UP}' line in {FIRST_RUN_S} s:\n{demo.output[-4000:]}"
        assert UP in demo.output, f"demo.sh ended without '{UP}':\n{demo.output[-4000:]}"
        with httpx.Client(timeout=30) as http:
            assert http.get(clone.web("api") + "/ready").status_code == 200
            docs = http.get(clone.web("api") + "/docs")
            assert docs.status_code == 200 and "swagger-ui" in docs.text
            health = http.get(clone.web("ui") + "/_stcore/health")
            assert health.status_code == 200 and health.text == "ok"
            page = http.get(clone.web("ui") + "/")
            assert page.status_code == 200 and "<title>Streamlit</title>" in page.text
            version = http.get(clone.web("airflow") + "/api/v2/version")
            assert version.status_code == 200 and version.json()["version"].startswith("3.")
            # The login it prints is the console's: the password gets a token.
            password = re.search(r"login: admin / (\S+)", demo.output)
            assert password, demo.output
            token = http.post(
                clone.web("airflow") + "/auth/token", json={"username": "admin", "password": password[1]}
            )
            assert token.status_code in (200, 201) and token.json()["access_token"], token.text
        running = " ".join(demo.leftovers().values())
        for part in ("weed mini", "uvicorn", "streamlit", "airflow"):
            assert part in running, f"the marker did not reach {part}: {running}"
        assert set(_listening(clone.all_ports())) >= {clone.ports[p] for p in ("api", "ui", "airflow", "s3")}

        assert demo.ctrl_c() == 130, demo.output[-3000:]
        assert "==> stopped the stack" in demo.output
        _assert_nothing_left(clone, demo)
    finally:
        demo.stop()


@pytest.mark.parametrize(
    ("env", "says"),
    [
        # serve.sh refuses two workers at once: the API exits before it is ever ready.
        (
            {"SERVE_WORKERS": "2"},
            r"==> api never became ready: it exited with status 2 before http://\S+/ready",
        ),
        # The API serves on another loopback address: alive, but never answering where the demo looks.
        (
            {"SERVE_HOST": "127.0.0.2", "DEMO_READY_TIMEOUT_S": "20"},
            r"==> api never became ready: http://127\.0\.0\.1:\d+/ready did not answer within 20 s",
        ),
    ],
    ids=["exits", "never-answers"],
)
def test_demo_exits_non_zero_naming_the_part_that_never_became_ready(
    clone: Clone, env: dict[str, str], says: str
) -> None:
    demo = Demo(clone, **env)
    try:
        demo.settled.wait(FIRST_RUN_S)
        assert UP not in demo.output, f"demo.sh said it was up:\n{demo.output[-3000:]}"
        assert demo.wait_exit(timeout_s=120) == 1, demo.output[-3000:]
        assert re.search(says, demo.output), demo.output[-3000:]
        assert f"its log: {clone.root / 'var' / 'logs' / 'api.log'}" in demo.output
        assert "==> stopped the stack" in demo.output
        _assert_nothing_left(clone, demo)
    finally:
        demo.stop()


@pytest.mark.parametrize(("arg", "status", "says"), [("--help", 0, "DEMO_READY_TIMEOUT_S"), ("--bogus", 2, "unknown argument: --bogus")])  # fmt: skip
def test_demo_help_and_an_unknown_argument(clone: Clone, arg: str, status: int, says: str) -> None:
    done = subprocess.run(
        [str(clone.root / "scripts" / "demo.sh"), arg], cwd=clone.root, env=clone.env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == status and says in done.stdout, done.stdout
    assert _stack(clone.mark) == {}
