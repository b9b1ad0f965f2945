"""A real server's file writes, syncs and socket sends, in the order they happened (Debian's strace).

`traced(command)` prefixes a command with strace following every thread, keeping only the system calls
a durability claim is about; `read_trace` turns its output into `Call`s with the position in the trace
where each began and ended. strace stops a thread at each traced call's entry and exit and writes
those stops in the order it handles them, so when thread A's call ended before thread B's began in the
trace, it ended before B's began in the process: a causal order, whatever the threads' scheduling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.prerequisites import program

WRITES = frozenset({"write", "pwrite64", "writev", "pwritev", "pwritev2"})
SYNCS = frozenset({"fsync", "fdatasync"})
SENDS = frozenset({"write", "writev", "sendto", "sendmsg"})
# Every other system call runs untraced (seccomp-bpf), so the server runs at close to its own speed.
TRACED = sorted(WRITES | SYNCS | SENDS)

_LINE = re.compile(r"^(\d+)\s+(.*)$")
_CALL = re.compile(r"^(\w+)\((.*)$")
_RESUMED = re.compile(r"^<\.\.\. (\w+) resumed>(.*)$")
_PATH = re.compile(r"^\d+<([^>]*)>")  # the first argument, a descriptor, as -y prints it: 7</path>


@dataclass
class Call:
    """One system call: its name, the path (or socket) of its descriptor, its arguments' text."""

    name: str
    path: str
    text: str
    began: int  # position in the trace
    ended: int  # position of its return (the same as began when strace printed it on one line)


def traced(command: list[str], output: Path) -> list[str]:
    """The command run under strace -f, writing the trace to output (strace blocks SIGTERM: see below)."""
    # -o FILE with a command: strace itself ignores SIGTERM (its -I 3 default) and stays until the
    # command exits, so a SIGTERM to the process group still traces the server's shutdown.
    # -y: descriptors with their paths; -s: enough of each buffer to read a request or status line.
    return [program("strace"), "-f", "-qq", "--seccomp-bpf", "-y", "-s", "160", "-e", "signal=none",
            "-e", f"trace={','.join(TRACED)}", "-o", str(output), *command]  # fmt: skip


def read_trace(path: Path) -> list[Call]:
    """The calls in an strace -f -y output file, an unfinished call joined with its resumption."""
    calls: list[Call] = []
    open_calls: dict[str, Call] = {}  # per thread: the call strace printed as <unfinished ...>
    for pos, line in enumerate(path.read_text(errors="replace").splitlines()):
        m = _LINE.match(line)
        if m is None:
            continue
        tid, rest = m.groups()
        resumed = _RESUMED.match(rest)
        if resumed is not None:
            call = open_calls.pop(tid, None)
            if call is not None and call.name == resumed.group(1):
                call.ended = pos
                call.text += resumed.group(2)
            continue
        called = _CALL.match(rest)
        if called is None:  # a signal or exit line
            continue
        name, args = called.groups()
        path_m = _PATH.match(args)
        call = Call(name, path_m.group(1) if path_m else "", args, pos, pos)
        calls.append(call)
        if rest.endswith("<unfinished ...>"):
            open_calls[tid] = call
            call.ended = -1  # not yet returned
    return calls


def unsynced_before(calls: list[Call], until: int, since: int, path: str) -> str | None:
    """Why the file's writes that returned in (since, until) are not all synced by `until`; None if they are.

    Synced: an fsync or fdatasync of the file began after the last of those writes returned and
    returned before position `until`. No write at all is also a reason: the trace did not see the data.
    """
    writes = [c for c in calls if c.name in WRITES and c.path == path and since < c.ended < until]
    if not writes:
        return f"no write to {path} between trace positions {since} and {until}"
    last = max(c.ended for c in writes)
    for c in calls:
        if c.name in SYNCS and c.path == path and c.began > last and 0 <= c.ended < until:
            return None
    return f"{path} written (returned at position {last}) and not synced before position {until}"


def sends(calls: list[Call], marker: str) -> list[Call]:
    """Socket writes whose data (as strace quotes it) holds marker, in trace order."""
    return [
        c for c in calls if c.name in SENDS and c.path.startswith(("socket:", "TCP:")) and marker in c.text
    ]
