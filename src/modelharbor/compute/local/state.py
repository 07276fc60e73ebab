"""What the executor knows about its instances and deployment versions, and the requests that wait on them.

``_Deployment`` is one deployment version (its spec, instances, idle stack, waiting requests, failure and
back-off accounting); ``_Instance`` one worker process (its socket, who holds it, the requests sent ahead on its
connection, its log); ``_Waiter`` a request waiting for an instance; ``_Slot`` a request sent ahead to a busy
instance's connection; ``_LogBuffer`` the bounded log of one instance. Plain data with no locking of its own:
the executor's lock guards the shared fields; an instance's socket and read buffer are used only by whoever holds
it (``_Instance.holder``). Also the small helpers both sides use: ``_killpg``, ``_exit_text``, ``_expire``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from typing import Any

from modelharbor.compute.base import InstanceStatus, LogLine, WorkerSpec
from modelharbor.compute.sandbox import Launch

_TURN = "turn"  # delivered to a request sent ahead: the answers before it were read, its own is next
_RETRY = "retry"  # delivered to a request sent ahead: the instance ended before it started; try another


def _expire(fut: asyncio.Future) -> None:
    """A timer's end of a wait: the waiting future gets "timeout" (unless it has its answer)."""
    if not fut.done():
        fut.set_result("timeout")


def _exit_text(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _killpg(pid: int | None, sig: int = signal.SIGKILL) -> None:
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)  # instances lead their own session: this reaches anything they started too


def _stream_of(inst: _Instance, pipe: Any) -> str:
    return "stdout" if inst.proc is not None and pipe is inst.proc.stdout else "stderr"


class _LogBuffer:
    """The newest lines of one instance, at most ``limit`` bytes (roughly)."""

    __slots__ = ("lines", "size", "limit", "pending")

    def __init__(self, limit: int):
        self.lines: deque[LogLine] = deque()
        self.size = 0
        self.limit = limit
        self.pending: dict[str, bytes] = {}

    def add(self, line: LogLine) -> None:
        self.lines.append(line)
        self.size += len(line.text) + 48
        while self.size > self.limit and len(self.lines) > 1:
            self.size -= len(self.lines.popleft().text) + 48

    def tail(self, n: int) -> list[str]:
        return [f"[{line.stream}] {line.text}" for line in list(self.lines)[-n:]]


class _Waiter:
    """A request waiting for an instance: its future gets an instance to use, a ``_Slot`` (it was sent ahead to a
    busy instance's connection on its behalf) or an error text."""

    __slots__ = ("loop", "future", "frame", "deadline")

    def __init__(self, loop: asyncio.AbstractEventLoop, frame: bytes, deadline: float):
        self.loop = loop
        self.future: asyncio.Future = loop.create_future()
        self.frame = frame
        self.deadline = deadline


class _Slot:
    """A request sent ahead to a busy instance: its future gets ``_TURN`` (read your answer now), ``_RETRY``, the
    answer itself (a dict, read off a dead instance's connection) or an error text."""

    __slots__ = ("loop", "future", "inst", "deadline", "rest", "abandoned", "sent_at")

    def __init__(self, loop: asyncio.AbstractEventLoop, inst: _Instance, deadline: float, rest: bytes):
        self.loop = loop
        self.future: asyncio.Future = loop.create_future()
        self.inst = inst
        self.deadline = deadline
        self.sent_at = time.monotonic()
        self.rest = rest  # what the non-blocking send left of the frame: the request sends it before anything else
        self.abandoned = False  # its caller left: its answer is read and dropped when its turn comes


class _Instance:
    """One worker process. ``holder`` says who may use its socket: None (the pool or the supervisor),
    "caller" (a request owns it), "drain" (the supervisor reads the answer of a request whose caller left)."""

    def __init__(self, seq: int, spec: WorkerSpec, generation: int, dep: _Deployment | None, log_limit: int):
        self.name = f"i{seq}"
        self.spec = spec
        self.generation = generation
        self.dep = dep
        self.proc: subprocess.Popen | None = None
        self.pid: int | None = None
        self.sock: socket.socket | None = None
        self.pipes: list[Any] = []
        self.launch: Launch | None = None  # how its process was started (sandbox resources to give back)
        self.state = "starting"  # starting | ready | busy | stopping
        self.holder: str | None = None
        self.pipe: deque[_Slot] = deque()  # requests sent ahead, behind the holder's, in the order sent
        self.sending = False  # the holder's frame is not all sent yet: nothing may be sent ahead
        self.head_deadline = 0.0  # the deadline of the request the holder reads the answer of
        self.head_sent = 0.0  # when that request was sent
        self.answered_at = 0.0  # when the last answer was read
        self.service = math.inf  # moving average of how long its requests take (unknown until one answered)
        self.rbuf = bytearray()
        self.requests = 0
        self.started_at = time.time()
        self.spawned_at = time.monotonic()
        self.last_used = time.monotonic()
        self.ready_at: float | None = None
        self.deadline = 0.0  # starting: start-up deadline; draining: the request's deadline
        self.kill_at: float | None = None  # stopping: when a graceful stop becomes SIGKILL
        self.expected_exit = False  # the executor ended it (idle, undeploy, replaced, shut down)
        self.broken: str | None = None  # why it must not serve again
        self.failure: str | None = None  # the start-up error it reported
        self.exit_code: int | None = None
        self.finalized = threading.Event()
        self.started = threading.Event()  # ready, or finalized before that (check() waits on it)
        self.log = _LogBuffer(log_limit)
        self.batch = False

    def system(self, text: str) -> None:
        self.log.add(LogLine(time.time(), self.name, self.pid, "system", text))

    def poll(self) -> int | None:
        """Its process's exit code once it ended (negative: killed by that signal), else None. A sandboxed
        instance's process is bwrap, which exits 128 + N when the worker was killed by signal N."""
        code = self.proc.poll() if self.proc is not None else None
        if code is not None and code > 128 and self.launch is not None and self.launch.isolated:
            return 128 - code
        return code

    def exit_text(self, code: int | None = None) -> str:
        """How it ended (``code``: its exit code, default the one recorded), and why when it went over its memory
        limit (compute/sandbox.py ``Launch.exceeded``)."""
        text = _exit_text(self.exit_code if code is None else code)
        why = self.launch.exceeded() if self.launch is not None else None
        return f"{text}: {why}" if why else text

    def status(self) -> InstanceStatus:
        return InstanceStatus(
            pid=self.pid,
            state=self.state,
            revision=self.spec.revision,
            requests=self.requests,
            started_at=self.started_at,
            id=self.name,
        )


class _Deployment:
    def __init__(self, spec: WorkerSpec):
        self.spec = spec
        self.generation = 0
        self.instances: list[_Instance] = []
        self.idle: list[_Instance] = []  # a stack: the most recently used serves first, the others age out
        self.waiters: deque[_Waiter] = deque()
        self.failures = 0  # start-up failures in a row
        self.failed = False
        self.error: str | None = None
        self.restarts = 0
        self.replace = 0  # instances to start in place of ones that ended unexpectedly
        self.backoff_until = 0.0
        self.old_logs: deque[_LogBuffer] = deque(maxlen=8)

    def queued(self) -> int:
        """Requests waiting: in the queue and sent ahead on busy instances' connections."""
        return len(self.waiters) + sum(len(i.pipe) for i in self.instances)

    def current(self) -> list[_Instance]:
        """Instances of the current generation that serve or will serve."""
        g = self.generation
        return [i for i in self.instances if i.generation == g and i.state != "stopping" and i.broken is None]
