"""The embedded executor: every instance of a deployment version is one OS process on this machine.

An instance is ``<environment python> -u worker_main.py --package DIR --fd N`` (see :mod:`worker_main`): it
loads ``deployment.py`` once and then answers one request at a time over a socket pair (length-prefixed JSON
frames) that stays open for its whole life, so a request costs two small socket writes, not a process start.

Threads and loops:

- ``request`` runs in the caller's event loop (uvicorn's) and talks to the instance's socket directly with the
  loop's ``sock_sendall`` and a readiness wait (``_recv``): the hot path wakes no other thread and holds the
  executor lock only to take an idle instance and to give it back.
- One daemon thread, the supervisor, does everything else: starts processes, reads their stdout/stderr into
  bounded in-memory logs, reads their start-up answer, reaps exits (health check), replaces dead instances,
  backs off from crash loops, stops idle instances above the minimum, drains replaced revisions. Only it
  touches its selector and closes instance sockets and pipes.
- ``deploy``/``undeploy``/``status``/``logs``/``check``/``shutdown`` may be called from any thread.

A request that waits for an instance holds a future of its own loop; whoever frees an instance (another
request, the supervisor when a new instance is ready) hands it over directly (``call_soon_threadsafe`` across
threads), so there is no thundering herd and no polling.

Pipelining: when every instance a version may have is busy, the next request is sent ahead to a busy instance's
connection (``PIPELINE_DEPTH``: the one it runs and up to 3 more), so the worker starts it the moment it answered the
one before instead of sleeping until the server has read that answer and sent the next — on a loaded machine the
worker's wake-ups cost more than the model. The worker still runs one request at a time, in order, and answers
in order; the request sent ahead waits its turn to read (``_Slot``). Only small frames whose deadline is no
earlier than the ones before them are sent ahead, so a request never times out behind another on the
connection. When an instance dies or is killed while a request waits on its connection, what the worker wrote
before it died says what ran: a request behind one that never finished did not start and is retried on another
instance; one whose answer arrived gets it; the one in between ran and failed with the instance.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import heapq
import itertools
import json
import logging
import math
import os
import selectors
import signal
import socket
import struct
import subprocess
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from modelharbor.compute.base import InstanceStatus, LogLine, Result, WorkerSpec, WorkerStatus
from modelharbor.compute.sandbox import Launch, Sandbox, SandboxError

log = logging.getLogger(__name__)

WORKER_MAIN = Path(__file__).with_name("worker_main.py")
_HEADER = struct.Struct(">I")
MAX_FRAME = 1 << 30
# What a worker inherits from the server's environment: enough to run, nothing of the server's configuration
# or secrets (MODELHARBOR_*, cloud credentials). The spec's env_vars come on top.
PASSED_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")
LOG_LINE_CHARS = 16_384
ERROR_LOG_LINES = 30
PIPELINE_DEPTH = 4  # requests on one instance's connection at once: the one it runs and up to 3 sent ahead
PIPELINE_FRAME = 64 * 1024  # only requests this small are sent ahead
# With more than one instance, only to an instance whose requests take at most this long (moving average): a request
# waiting on one instance's connection cannot go to another that frees up first, which costs little behind fast
# requests and a lot behind slow ones — and pipelining only pays when a request is about as cheap as a hand-off.
PIPELINE_MAX_SERVICE = 0.005
SALVAGE_SECONDS = 2.0  # after killing an instance, how long to read what it wrote before it died
_TURN = "turn"  # delivered to a request sent ahead: the answers before it were read, its own is next
_RETRY = "retry"  # delivered to a request sent ahead: the instance ended before it started; try another


class _Lost(Exception):
    """The instance's connection ended in the middle of a request."""


_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _encode(obj: Any) -> bytes:
    body = _JSON(obj).encode("utf-8")
    if len(body) > MAX_FRAME:
        raise ValueError(f"the request is larger than {MAX_FRAME} bytes")
    return _HEADER.pack(len(body)) + body


def _take_frame(buf: bytearray) -> bytes | None:
    if len(buf) < 4:
        return None
    (size,) = _HEADER.unpack_from(buf)
    if size > MAX_FRAME:
        raise _Lost(f"the worker sent a frame of {size} bytes")
    if len(buf) < 4 + size:
        return None
    body = bytes(buf[4 : 4 + size])
    del buf[: 4 + size]
    return body


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


def _runs_differently(a: WorkerSpec, b: WorkerSpec) -> bool:
    return (a.revision, a.package_dir, a.environment, a.env_vars, a.context) != (
        b.revision,
        b.package_dir,
        b.environment,
        b.env_vars,
        b.context,
    )


class LocalExecutor:
    """Runs deployment versions as local worker processes (see the module docstring and docs/compute.md).

    ``startup_failures`` start-up failures in a row mark a version ``failed`` (until a different spec is
    deployed); between them the executor waits ``backoff`` seconds, doubling up to ``backoff_max``.
    ``stop_grace`` is how long a stopping instance may take to exit before SIGKILL. ``log_bytes`` bounds the
    log kept per instance (the logs of the last 8 ended instances of a version are kept too).
    """

    def __init__(
        self,
        *,
        startup_failures: int = 3,
        backoff: float = 0.5,
        backoff_max: float = 30.0,
        stop_grace: float = 5.0,
        log_bytes: int = 1 << 20,
        tick: float = 0.1,
        passed_env: tuple[str, ...] = PASSED_ENV,
        sandbox: Sandbox | None = None,
    ):
        self._startup_failures = startup_failures
        self._backoff = backoff
        self._backoff_max = backoff_max
        self._stop_grace = stop_grace
        self._log_bytes = log_bytes
        self._tick = tick
        self._passed_env = passed_env
        # No sandbox given: processes start plainly (the executor's own tests); the server passes its own.
        self.sandbox = sandbox or Sandbox("off", single_tenant=True)
        self._lock = threading.Lock()
        self._deployments: dict[str, _Deployment] = {}
        self._instances: set[_Instance] = set()  # every instance whose process may still run
        self._commands: deque[tuple] = deque()  # work for the supervisor thread
        self._seq = itertools.count(1)
        self._closed = False
        self._poll_now = False
        self.sent_ahead = 0  # requests sent ahead to a busy instance so far (a statistic; see PIPELINE_DEPTH)
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._supervise, name="modelharbor-compute", daemon=True)
        self._thread.start()
        atexit.register(self.shutdown)

    # ------------------------------------------------------------------ the protocol

    def deploy(self, spec: WorkerSpec) -> None:
        _validate(spec)
        with self._lock:
            if self._closed:
                raise RuntimeError("the executor was shut down")
            dep = self._deployments.get(spec.key)
            if dep is None:
                dep = self._deployments[spec.key] = _Deployment(spec)
            elif dep.spec == spec:
                return
            else:
                restart = _runs_differently(dep.spec, spec)
                dep.spec = spec
                dep.failed, dep.failures, dep.error, dep.backoff_until = False, 0, None, 0.0
                if restart:
                    dep.generation += 1
                    dep.replace = 0
                    for inst in list(dep.instances):
                        if inst.holder is None:
                            self._stop_locked(inst, f"replaced by revision {spec.revision}")
            self._plan_locked(dep)
        self._wake()

    def check(self, spec: WorkerSpec, timeout: float = 60.0) -> WorkerStatus:
        _validate(spec)
        with self._lock:
            if self._closed:
                raise RuntimeError("the executor was shut down")
            inst = _Instance(next(self._seq), spec, 0, None, self._log_bytes)
            inst.deadline = time.monotonic() + timeout
            self._instances.add(inst)
            self._commands.append(("spawn", inst))
        self._wake()
        inst.started.wait(timeout + 5.0)
        with self._lock:
            ok = inst.ready_at is not None and inst.exit_code is None
            if inst.ready_at is None and inst.failure is None and inst.exit_code is None:
                inst.failure = f"Deployment did not start within {timeout:g} s"
            error = None if ok else self._failure_text(inst)
            self._stop_locked(inst, "check finished")
        self._wake()
        inst.finalized.wait(self._stop_grace + 5.0)
        lines = [f"[{line.stream}] {line.text}" for line in inst.log.lines if line.stream != "system"]
        return WorkerStatus(
            key=spec.key, state="stopped" if ok else "failed", error=error, restarts=0, log="\n".join(lines)
        )

    async def request(
        self, key: str, data: Any, *, timeout: float | None = None, context: dict[str, Any] | None = None
    ) -> Result:
        t0 = time.monotonic()
        message: dict[str, Any] = {"op": "batch" if isinstance(data, list) else "request", "data": data}
        if context:
            message["context"] = context
        try:
            frame = _encode(message)
        except (TypeError, ValueError) as exc:
            return _failed(t0, f"the request is not JSON-serialisable: {exc}")
        loop = asyncio.get_running_loop()
        for _attempt in range(3):
            waiter = slot = None
            wake = False
            with self._lock:
                dep = self._deployments.get(key)
                if dep is None or self._closed:
                    return _failed(t0, f"deployment version {key!r} is not deployed")
                if dep.failed:
                    return _failed(t0, dep.error or "the deployment failed to start")
                spec = dep.spec
                limit = spec.request_timeout if timeout is None else timeout
                deadline = t0 + limit
                inst = self._take_idle_locked(dep, deadline)
                if inst is None:
                    queued = dep.queued()
                    if queued >= spec.maximum_queue:
                        return _failed(t0, f"queue full: {queued} requests are waiting for an instance")
                    if not dep.waiters:
                        slot = self._send_ahead_locked(dep, loop, frame, deadline)
                    if slot is None:
                        waiter = _Waiter(loop, frame, deadline)
                        dep.waiters.append(waiter)
                        if len(dep.instances) < spec.maximum_instances or dep.replace:
                            wake = self._plan_locked(dep)  # else the supervisor's next tick looks (after a rollout)
            if waiter is not None:
                if wake:
                    self._wake()
                got = await self._wait(dep, waiter, deadline)
                if isinstance(got, str):
                    return _failed(t0, got if got != "timeout" else f"timed out after {limit:g} s in the queue")
                if isinstance(got, _Slot):
                    slot = got
                else:
                    inst = got
            if slot is not None:
                outcome = await self._take_turn(loop, slot, limit)
            else:
                outcome = await self._exchange(loop, inst, frame, deadline, limit)
            if outcome is not None and outcome is not _RETRY:
                return _answer(t0, outcome)
            # The instance ended before it started the request: nothing ran, another instance may take it.
        return _failed(t0, "no instance could take the request (they kept exiting)")

    def undeploy(self, key: str) -> None:
        with self._lock:
            dep = self._deployments.pop(key, None)
            if dep is None:
                return
            deliveries = [(w, f"deployment version {key!r} was undeployed") for w in dep.waiters]
            dep.waiters.clear()
            waiting = []
            for inst in list(dep.instances):
                if inst.holder is None:
                    self._stop_locked(inst, "undeployed")
                    waiting.append(inst)
        self._wake()
        self._deliver_all(deliveries)
        end = time.monotonic() + self._stop_grace + 2.0
        for inst in waiting:
            inst.finalized.wait(max(0.0, end - time.monotonic()))

    def status(self, key: str) -> WorkerStatus:
        with self._lock:
            dep = self._deployments.get(key)
            if dep is None:
                return WorkerStatus(key=key, state="stopped")
            current = dep.current()
            if dep.failed:
                state = "failed"
            elif any(i.state in ("ready", "busy") for i in current):
                state = "running"
            elif current or dep.waiters or dep.backoff_until or dep.spec.minimum_instances:
                state = "starting"
            else:
                state = "stopped"
            return WorkerStatus(
                key=key,
                state=state,
                instances=tuple(i.status() for i in dep.instances),
                error=dep.error,
                restarts=dep.restarts,
                queued=dep.queued(),
            )

    def logs(self, key: str, since: float | None = None) -> list[LogLine]:
        with self._lock:
            dep = self._deployments.get(key)
            if dep is None:
                return []
            buffers = [list(b.lines) for b in dep.old_logs] + [list(i.log.lines) for i in dep.instances]
        merged = heapq.merge(*buffers, key=lambda line: line.time)
        return [line for line in merged if since is None or line.time > since]

    def shutdown(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            deliveries = []
            for dep in self._deployments.values():
                deliveries += [(w, "the executor was shut down") for w in dep.waiters]
                dep.waiters.clear()
            instances = list(self._instances)
            for inst in instances:
                inst.expected_exit = True
        atexit.unregister(self.shutdown)
        self._wake()
        self._thread.join(10.0)
        while self._commands:  # answers the supervisor did not hand out any more
            command = self._commands.popleft()
            if command[0] == "deliver":
                deliveries += command[1]
        self._deliver_all(deliveries)
        for inst in instances:
            _killpg(inst.pid, signal.SIGTERM)
        end = time.monotonic() + min(self._stop_grace, 2.0)
        for inst in instances:
            if inst.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    inst.proc.wait(max(0.0, end - time.monotonic()))
        for inst in instances:
            _killpg(inst.pid)
            if inst.proc is not None:
                try:
                    inst.proc.wait(5.0)
                except subprocess.TimeoutExpired:
                    log.warning("worker %s (pid %s) did not exit after SIGKILL", inst.name, inst.pid)
            if inst.launch is not None:
                inst.launch.close()
            if inst.holder != "caller":  # a request still reading it sees the end and lets go
                self._close_io(inst)
            inst.finalized.set()
            inst.started.set()
        with self._lock:
            self._instances.clear()
            self._deployments.clear()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    # ------------------------------------------------------------------ the hot path

    def _take_idle_locked(self, dep: _Deployment, deadline: float) -> _Instance | None:
        while dep.idle:
            inst = dep.idle.pop()
            if inst.state == "ready" and inst.broken is None and inst.exit_code is None:
                self._hold_locked(inst, deadline)
                return inst
        return None

    @staticmethod
    def _hold_locked(inst: _Instance, deadline: float) -> None:
        inst.state = "busy"
        inst.holder = "caller"
        inst.sending = True
        inst.head_deadline = deadline
        inst.head_sent = time.monotonic()

    def _send_ahead_locked(
        self, dep: _Deployment, loop: asyncio.AbstractEventLoop, frame: bytes, deadline: float
    ) -> _Slot | None:
        """Send ``frame`` to a busy instance's connection behind the request it runs (see the module docstring), or
        None when none can take it now: the version may still start instances, the frame is large, or every
        busy instance has a full pipe or a request with a later deadline on it."""
        current = self._pipelining_locked(dep)
        if current is None or len(frame) > PIPELINE_FRAME:
            return None
        takers = [inst for inst in current if self._can_take_ahead_locked(inst, deadline)]
        if not takers:
            return None
        return self._put_ahead_locked(min(takers, key=lambda inst: len(inst.pipe)), loop, frame, deadline)

    def _pipelining_locked(self, dep: _Deployment) -> list[_Instance] | None:
        """The instances of a live deployment that runs every instance it may (requests can be sent ahead to
        them), or None: more instances may start (a waiting request is what makes them start) or it is gone."""
        if self._closed or self._deployments.get(dep.spec.key) is not dep:
            return None
        current = dep.current()
        return current if len(current) >= dep.spec.maximum_instances else None

    @staticmethod
    def _can_take_ahead_locked(inst: _Instance, deadline: float) -> bool:
        if (
            inst.state != "busy"
            or inst.holder != "caller"
            or inst.sending
            or inst.broken is not None
            or inst.exit_code is not None
            or inst.sock is None
            or len(inst.pipe) >= PIPELINE_DEPTH - 1
        ):
            return False
        if (inst.dep.spec if inst.dep else inst.spec).maximum_instances > 1 and inst.service > PIPELINE_MAX_SERVICE:
            return False
        return deadline >= (inst.pipe[-1].deadline if inst.pipe else inst.head_deadline)

    def _put_ahead_locked(
        self, inst: _Instance, loop: asyncio.AbstractEventLoop, frame: bytes, deadline: float
    ) -> _Slot | None:
        try:
            sent = inst.sock.send(frame)
        except OSError:  # full (BlockingIOError) or gone: the request waits for an instance the usual way
            return None
        slot = _Slot(loop, inst, deadline, frame[sent:])
        if slot.rest:
            inst.sending = True  # the rest goes first: nothing else may be sent ahead until it is out
        inst.pipe.append(slot)
        self.sent_ahead += 1
        return slot

    def _feed_locked(self, inst: _Instance) -> list[tuple[Any, Any]]:
        """Send waiting requests ahead to ``inst`` while its pipe has room; the deliveries that tell them."""
        dep = inst.dep
        deliveries: list[tuple[Any, Any]] = []
        if dep is None or inst.generation != dep.generation or self._pipelining_locked(dep) is None:
            return deliveries
        while dep.waiters:
            waiter = dep.waiters[0]
            if waiter.future.done():
                dep.waiters.popleft()
                continue
            if len(waiter.frame) > PIPELINE_FRAME or not self._can_take_ahead_locked(inst, waiter.deadline):
                break
            slot = self._put_ahead_locked(inst, waiter.loop, waiter.frame, waiter.deadline)
            if slot is None:
                break
            dep.waiters.popleft()
            deliveries.append((waiter, slot))
        return deliveries

    async def _wait(self, dep: _Deployment, waiter: _Waiter, deadline: float) -> _Instance | _Slot | str:
        """An instance handed over to ``waiter``, a slot it was sent ahead in, or an error text ("timeout" when the
        deadline passed)."""
        fut = waiter.future
        timer = waiter.loop.call_later(max(0.0, deadline - time.monotonic()), _expire, fut)
        try:
            got = await fut
        except BaseException:  # cancelled: a hand-over already on its way sees the cancelled future
            self._forget_waiter(dep, waiter)
            raise
        finally:
            timer.cancel()
        if got == "timeout":
            self._forget_waiter(dep, waiter)
        return got

    def _forget_waiter(self, dep: _Deployment, waiter: _Waiter) -> None:
        with self._lock, contextlib.suppress(ValueError):
            dep.waiters.remove(waiter)
        fut = waiter.future
        if fut.done() and not fut.cancelled():
            got = fut.result()
            if isinstance(got, _Instance):  # handed over just as the caller left
                self._release(got, answered=False)
            elif isinstance(got, _Slot):  # sent ahead just as the caller left
                self._abandon(got)
        else:
            fut.cancel()

    async def _exchange(
        self, loop: asyncio.AbstractEventLoop, inst: _Instance, frame: bytes, deadline: float, limit: float
    ) -> dict | str | None:
        """The instance's answer (a dict), an error text, or None when the request never reached it."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            inst.sending = False
            self._release(inst, answered=False)
            return f"timed out after {limit:g} s in the queue"
        try:
            async with asyncio.timeout(remaining):
                await loop.sock_sendall(inst.sock, frame)
        except TimeoutError:
            self._end(inst, f"request timed out after {limit:g} s while it was sent: killing the instance")
            return f"request timed out after {limit:g} s (the instance was restarted)"
        except OSError as exc:
            if isinstance(exc, (BrokenPipeError, ConnectionResetError)):
                self._end(inst, "its connection was closed before it read a request")
                return None
            self._end(inst, f"its connection broke during a request ({exc})")
            return await self._crash_text(inst)
        except BaseException:  # cancelled: the caller left
            self._end(inst, "a request was cancelled while it was being sent")
            raise
        inst.sending = False
        if inst.dep is not None and inst.dep.waiters:
            with self._lock:
                deliveries = self._feed_locked(inst)
            self._deliver_all(deliveries)
        return await self._read_answer(loop, inst, deadline, limit)

    async def _take_turn(self, loop: asyncio.AbstractEventLoop, slot: _Slot, limit: float) -> dict | str | None:
        """A request sent ahead: send what was left of its frame, wait until the answers before it were read, then
        read its own (or take what the instance's end left it)."""
        inst = slot.inst
        if slot.rest:
            try:
                async with asyncio.timeout(max(0.0, slot.deadline - time.monotonic())):
                    await loop.sock_sendall(inst.sock, slot.rest)
            except BaseException as exc:  # half a frame on the wire: the instance cannot serve on
                # the holder sees the end of the connection and retries this request elsewhere (it never started)
                self._break(inst, f"a request sent ahead could not be sent whole ({type(exc).__name__})")
                if not isinstance(exc, Exception):  # cancelled
                    self._abandon(slot)
                    raise
            else:
                slot.rest = b""
                inst.sending = False
        fut = slot.future
        timer = loop.call_later(max(0.0, slot.deadline - time.monotonic()), _expire, fut)
        try:
            got = await fut
        except BaseException:  # cancelled: the caller left; its answer is read and dropped in its turn
            self._abandon(slot)
            raise
        finally:
            timer.cancel()
        if got == "timeout":
            self._abandon(slot)
            return f"timed out after {limit:g} s waiting on the instance"
        if got is _TURN:
            return await self._read_answer(loop, inst, slot.deadline, limit)
        return got  # _RETRY, an error text or the answer salvaged from the instance's end

    def _abandon(self, slot: _Slot) -> None:
        """The caller of a request sent ahead left: its answer will be read and dropped when its turn comes."""
        inst = slot.inst
        with self._lock:
            if slot in inst.pipe:
                slot.abandoned = True
                return
        fut = slot.future
        if fut.done() and not fut.cancelled() and fut.result() is _TURN:  # its turn came just as it left
            self._drain(inst, slot.deadline)

    async def _read_answer(
        self, loop: asyncio.AbstractEventLoop, inst: _Instance, deadline: float, limit: float
    ) -> dict | str:
        sock = inst.sock
        buf = inst.rbuf
        try:
            body = _take_frame(buf)  # often read already, with the answer before it
            if body is None:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    while True:
                        chunk = await _recv(loop, sock)
                        if not chunk:
                            raise _Lost("connection closed")
                        buf += chunk
                        body = _take_frame(buf)
                        if body is not None:
                            break
        except TimeoutError:
            reason = f"request timed out after {limit:g} s: killing the instance"
            self._break(inst, reason)
            frames = await self._salvage(loop, inst) if inst.pipe else []
            self._end(inst, reason, head_done=bool(frames), frames=frames[1:])
            return f"request timed out after {limit:g} s (the instance was restarted)"
        except (_Lost, OSError) as exc:
            self._end(inst, f"its connection broke during a request ({exc})")
            return await self._crash_text(inst)
        except BaseException:  # cancelled: the caller left
            self._drain(inst, deadline)
            raise
        self._release(inst)
        try:
            return json.loads(body)
        except ValueError as exc:
            return f"the worker sent an invalid answer: {exc}"

    async def _salvage(self, loop: asyncio.AbstractEventLoop, inst: _Instance) -> list[bytes]:
        """The whole frames a killed instance wrote before it died (read until its connection ends)."""
        frames: list[bytes] = []
        buf = inst.rbuf
        with contextlib.suppress(TimeoutError, OSError, _Lost):
            async with asyncio.timeout(SALVAGE_SECONDS):
                while True:
                    while (body := _take_frame(buf)) is not None:
                        frames.append(body)
                    chunk = await _recv(loop, inst.sock)
                    if not chunk:
                        break
                    buf += chunk
        return frames

    def _settle_pipe_locked(
        self, inst: _Instance, head_done: bool, frames: list[bytes] | tuple = ()
    ) -> list[tuple[Any, Any]]:
        """The requests sent ahead to an instance that ended: each gets what it is owed (see the docstring)."""
        deliveries: list[tuple[Any, Any]] = []
        ran = head_done  # the request before this one finished, so this one may have started
        for n, slot in enumerate(inst.pipe):
            if n < len(frames):
                try:
                    outcome: Any = json.loads(frames[n])
                except ValueError as exc:
                    outcome = f"the worker sent an invalid answer: {exc}"
                ran = True
            elif ran:
                outcome = f"the instance ended while it handled the request ({inst.broken or 'it exited'})"
                ran = False
            else:
                outcome = _RETRY
            if not slot.abandoned:
                deliveries.append((slot, outcome))
        inst.pipe.clear()
        inst.sending = False
        return deliveries

    def _release(self, inst: _Instance, *, answered: bool = True) -> None:
        """Give an instance back after a request: to the request sent ahead on it, to the next waiter, to the pool,
        or to its end."""
        handover = None
        deliveries: list[tuple[Any, Any]] = []
        wake = False
        with self._lock:
            t = time.monotonic()
            if answered:
                inst.requests += 1
                took = t - max(inst.head_sent, inst.answered_at)  # it ran one request at a time, in order
                inst.service = took if inst.service == math.inf else 0.7 * inst.service + 0.3 * took
                inst.answered_at = t
            inst.last_used = t
            dep = inst.dep
            if inst.pipe and inst.broken is None:  # exited: the next reader takes an answer it left, or its end
                slot = inst.pipe.popleft()
                inst.head_deadline = slot.deadline
                inst.head_sent = slot.sent_at
                if slot.abandoned:
                    inst.holder = "drain"
                    inst.deadline = slot.deadline
                    self._commands.append(("drain", inst))
                    wake = True
                else:
                    inst.holder = "caller"
                    deliveries.append((slot, _TURN))
                deliveries += self._feed_locked(inst)
            else:
                deliveries += self._settle_pipe_locked(inst, head_done=answered)
                inst.holder = None
                if inst.broken is not None or inst.exit_code is not None:
                    inst.state = "stopping"
                    self._finalize_if_done_locked(inst)
                elif (
                    self._closed
                    or dep is None
                    or self._deployments.get(dep.spec.key) is not dep
                    or inst.generation != dep.generation
                    or (
                        len(dep.instances) > dep.spec.maximum_instances
                        and len(dep.current()) > dep.spec.maximum_instances
                    )
                ):
                    self._stop_locked(inst, "no longer needed")
                else:
                    while dep.waiters:
                        waiter = dep.waiters.popleft()
                        if not waiter.future.done():
                            handover = waiter
                            self._hold_locked(inst, waiter.deadline)
                            break
                    if handover is None:
                        inst.state = "ready"
                        dep.idle.append(inst)
        if handover is not None:
            self._deliver(handover, inst)
        elif inst.state == "stopping" or wake:
            self._wake()
        self._deliver_all(deliveries)

    def _deliver(self, waiter: _Waiter | _Slot, item: Any) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is waiter.loop:
            self._resolve(waiter, item)
            return
        try:
            waiter.loop.call_soon_threadsafe(self._resolve, waiter, item)
        except RuntimeError:  # that loop is closed: nobody waits any more
            self._unclaimed(waiter, item)

    def _resolve(self, waiter: _Waiter | _Slot, item: Any) -> None:
        if waiter.future.done():
            self._unclaimed(waiter, item)
        else:
            waiter.future.set_result(item)

    def _unclaimed(self, waiter: _Waiter | _Slot, item: Any) -> None:
        """Nobody took ``item``: give back what it holds (an instance, a place on a connection, a turn)."""
        if isinstance(item, _Instance):
            self._release(item, answered=False)
        elif isinstance(item, _Slot):
            self._abandon(item)
        elif item is _TURN and isinstance(waiter, _Slot):
            self._drain(waiter.inst, waiter.deadline)

    def _deliver_all(self, deliveries: list[tuple[Any, Any]]) -> None:
        for waiter, item in deliveries:
            self._deliver(waiter, item)

    def _break(self, inst: _Instance, reason: str) -> None:
        """Mark an instance as one that must not serve again and kill it."""
        with self._lock:
            if inst.broken is None:
                inst.broken = reason
                inst.system(reason)
        _killpg(inst.pid)

    def _end(self, inst: _Instance, reason: str, *, head_done: bool = False, frames: list[bytes] | tuple = ()) -> None:
        """A request's instance must not serve again (timeout, broken connection): kill it, count it, replace; the
        requests sent ahead to it get what its end left them (``head_done``: the holder's request finished;
        ``frames``: the answers read after that one's)."""
        self._break(inst, reason)
        with self._lock:
            deliveries = self._settle_pipe_locked(inst, head_done, frames)
        self._release(inst, answered=False)
        self._deliver_all(deliveries)

    def _drain(self, inst: _Instance, deadline: float) -> None:
        """The caller left after sending: the supervisor reads (and drops) the answer, then frees the instance."""
        with self._lock:
            inst.holder = "drain"
            inst.deadline = deadline
            self._commands.append(("drain", inst))
        self._wake()

    async def _crash_text(self, inst: _Instance) -> str:
        for _ in range(20):
            if inst.proc is None or inst.proc.poll() is not None:
                break
            await asyncio.sleep(0.01)
        code = inst.proc.poll() if inst.proc is not None else None
        with self._lock:
            lines = inst.log.tail(10)
        text = f"the instance exited while handling the request ({_exit_text(code)})"
        return text + ("\n" + "\n".join(lines) if lines else "")

    # ------------------------------------------------------------------ planning (under the lock)

    def _plan_locked(self, dep: _Deployment) -> bool:
        """Create the instances ``dep`` needs now (minimum, queued requests, replacements); True if any."""
        if dep.failed or self._closed or self._deployments.get(dep.spec.key) is not dep:
            return False
        if dep.backoff_until and time.monotonic() < dep.backoff_until:
            return False
        dep.backoff_until = 0.0
        spec = dep.spec
        current = dep.current()
        starting = sum(1 for i in current if i.state == "starting")
        want = max(spec.minimum_instances - len(current), len(dep.waiters) - starting, dep.replace)
        want = min(want, spec.maximum_instances - len(current))
        if dep.failures and want > 0:  # after a failed start, probe with one instance at a time
            want = 0 if starting else 1
        if want <= 0:
            return False
        dep.replace = max(0, dep.replace - want)
        for _ in range(want):
            inst = _Instance(next(self._seq), spec, dep.generation, dep, self._log_bytes)
            inst.deadline = time.monotonic() + spec.startup_timeout
            dep.instances.append(inst)
            self._instances.add(inst)
            self._commands.append(("spawn", inst))
        return True

    def _stop_locked(self, inst: _Instance, reason: str) -> None:
        """Stop an instance nobody holds: gracefully when it is ready, at once when it is still starting."""
        if inst.state == "stopping" and inst.expected_exit:
            return
        inst.expected_exit = True
        was = inst.state
        inst.state = "stopping"
        if inst.dep is not None and inst in inst.dep.idle:
            inst.dep.idle.remove(inst)
        inst.system(f"stopping: {reason}")
        self._commands.append(("stop", inst, was == "ready" or was == "busy"))
        self._finalize_if_done_locked(inst)

    def _finalize_if_done_locked(self, inst: _Instance) -> None:
        """Forget an instance once its process is gone and nobody holds it; account for why it ended."""
        if inst.exit_code is None or inst.holder is not None or inst.finalized.is_set():
            return
        self._instances.discard(inst)
        for pipe in inst.pipes:
            self._read_log_locked(inst, pipe, _stream_of(inst, pipe), drain=True)
        self._commands.append(("close", inst))
        inst.system(f"exited ({_exit_text(inst.exit_code)})")
        dep = inst.dep
        deliveries: list[tuple[_Waiter, _Instance | str]] = []
        if dep is not None:
            if inst in dep.instances:
                dep.instances.remove(inst)
            if inst in dep.idle:
                dep.idle.remove(inst)
            dep.old_logs.append(inst.log)
            live = self._deployments.get(dep.spec.key) is dep and inst.generation == dep.generation
            if live and not inst.expected_exit:
                dep.restarts += 1
                if inst.ready_at is None:
                    dep.failures += 1
                    dep.error = self._failure_text(inst)
                    if dep.failures >= self._startup_failures:
                        dep.failed = True
                        deliveries = [(w, dep.error) for w in dep.waiters]
                        dep.waiters.clear()
                    else:
                        delay = min(self._backoff * 2 ** (dep.failures - 1), self._backoff_max)
                        dep.backoff_until = time.monotonic() + delay
                        inst.system(f"failed to start ({dep.failures} in a row): next try in {delay:g} s")
                else:
                    dep.replace += 1
            if live:
                self._plan_locked(dep)
        inst.finalized.set()
        inst.started.set()
        if deliveries:
            self._commands.append(("deliver", deliveries))

    def _failure_text(self, inst: _Instance) -> str:
        head = inst.failure or f"the worker exited before it was ready ({_exit_text(inst.exit_code)})"
        lines = [line for line in inst.log.tail(ERROR_LOG_LINES)]
        return head + ("\n\nLog tail:\n" + "\n".join(lines) if lines else "")

    # ------------------------------------------------------------------ the supervisor thread

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            self._wake_w.send(b"\0")

    def _supervise(self) -> None:
        next_tick = 0.0
        while True:
            with self._lock:
                if self._closed:
                    return
            while self._commands:
                try:
                    self._run_command(self._commands.popleft())
                except Exception:  # noqa: BLE001 - the supervisor must survive anything
                    log.exception("compute supervisor command failed")
            now = time.monotonic()
            if now >= next_tick or self._poll_now:
                self._poll_now = False
                try:
                    self._housekeep(now)
                except Exception:  # noqa: BLE001
                    log.exception("compute housekeeping failed")
                next_tick = now + self._tick
                continue  # housekeeping may have queued commands
            try:
                events = self._selector.select(max(0.0, next_tick - now))
            except OSError:
                return
            for key, _mask in events:
                try:
                    self._on_readable(key.data, key.fileobj)
                except Exception:  # noqa: BLE001
                    log.exception("compute supervisor read failed")

    def _run_command(self, command: tuple) -> None:
        what, *args = command
        if what == "spawn":
            self._spawn(args[0])
        elif what == "stop":
            inst, graceful = args
            if inst.proc is None:
                return
            if graceful and inst.holder is None:
                self._unwatch(inst.sock)
                if inst.sock is not None:
                    with contextlib.suppress(OSError):
                        inst.sock.shutdown(socket.SHUT_RDWR)  # the worker reads EOF and exits
                inst.kill_at = time.monotonic() + self._stop_grace
            else:
                _killpg(inst.pid)
        elif what == "drain":
            inst = args[0]
            if inst.sock is not None and inst.holder == "drain":
                try:
                    body = _take_frame(inst.rbuf)  # a pipelined answer may have been read with the one before it
                except _Lost:
                    _killpg(inst.pid)
                    return
                if body is not None:
                    self._release(inst, answered=True)
                else:
                    self._watch(inst.sock, ("answer", inst))
        elif what == "close":
            self._close_io(args[0])
        elif what == "deliver":
            self._deliver_all(args[0])

    def _spawn(self, inst: _Instance) -> None:
        spec = inst.spec
        if inst.state != "starting" or inst.expected_exit:
            with self._lock:
                inst.exit_code = inst.exit_code if inst.exit_code is not None else -int(signal.SIGKILL)
                self._finalize_if_done_locked(inst)
            return
        refusal = self.sandbox.refusal(spec.tenant)
        if refusal is not None:
            with self._lock:
                inst.failure = refusal
                inst.exit_code = -1
                self._finalize_if_done_locked(inst)
            return
        isolated = self.sandbox.isolated
        env = {} if isolated else {k: os.environ[k] for k in self._passed_env if k in os.environ}
        env.update(spec.env_vars)
        env["PYTHONUNBUFFERED"] = "1"
        ours, theirs = socket.socketpair()
        launch = None
        try:
            launch = self.sandbox.launch(
                f"{inst.name}-{os.getpid()}",
                python=spec.environment.python,
                worker=WORKER_MAIN,
                package_dir=spec.package_dir,
                # in a sandbox the worker's parent is the sandbox's first process (pid 1 of its namespace)
                worker_args=["--fd", str(theirs.fileno()), "--parent-pid", "1" if isolated else str(os.getpid())],
                env=env,
                limits=spec.limits,
                pass_fds=(theirs.fileno(),),
            )
            proc = subprocess.Popen(
                launch.argv,
                cwd=launch.cwd,
                env=launch.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=launch.pass_fds,
                start_new_session=True,
            )
        except Exception as exc:  # noqa: BLE001 - a missing interpreter or package dir is a start-up failure
            ours.close()
            if launch is not None:
                launch.close()
            what = str(exc) if isinstance(exc, SandboxError) else f"could not start {spec.environment.python}: {exc}"
            with self._lock:
                inst.failure = what
                inst.exit_code = -1
                self._finalize_if_done_locked(inst)
            return
        finally:
            theirs.close()
            if launch is not None:
                launch.started()
        try:
            ours.settimeout(10.0)
            ours.sendall(_encode({"op": "init", "context": spec.context}))
        except OSError:
            pass  # it died at once: its exit and output are reported as a start-up failure
        ours.setblocking(False)
        with self._lock:
            inst.proc, inst.pid, inst.sock, inst.launch = proc, proc.pid, ours, launch
            inst.pipes = [proc.stdout, proc.stderr]
            inst.system(f"started (pid {proc.pid}, revision {spec.revision})")
        for stream, pipe in (("stdout", proc.stdout), ("stderr", proc.stderr)):
            os.set_blocking(pipe.fileno(), False)
            self._selector.register(pipe, selectors.EVENT_READ, ("log", inst, stream))
        self._watch(ours, ("startup", inst))

    def _watch(self, fileobj: Any, data: tuple) -> None:
        try:
            self._selector.register(fileobj, selectors.EVENT_READ, data)
        except KeyError:
            self._selector.modify(fileobj, selectors.EVENT_READ, data)

    def _unwatch(self, fileobj: Any) -> None:
        if fileobj is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(fileobj)

    def _close_io(self, inst: _Instance) -> None:
        if inst.launch is not None and inst.exit_code is not None:
            inst.launch.close()  # its uid and cgroup: every process of it is gone (killed with its group)
        for obj in (*inst.pipes, inst.sock):
            if obj is None:
                continue
            if obj is not inst.sock:
                self._read_log(inst, obj, _stream_of(inst, obj), drain=True)
            self._unwatch(obj)
            with contextlib.suppress(OSError):
                obj.close()
        inst.pipes = []

    def _on_readable(self, data: tuple | None, fileobj: Any) -> None:
        if data is None:
            try:
                while self._wake_r.recv(4096):
                    pass
            except (BlockingIOError, OSError):
                pass
            return
        what, inst, *rest = data
        if what == "log":
            if self._read_log(inst, fileobj, rest[0]):
                self._unwatch(fileobj)
                self._poll_now = True
            return
        try:
            chunk = inst.sock.recv(1 << 18)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:  # the process is ending: its exit is reaped by the housekeeping
            self._unwatch(inst.sock)
            if what == "answer":
                self._end(inst, "its connection closed before it answered a request whose caller left")
            else:
                _killpg(inst.pid)
            return
        inst.rbuf += chunk
        try:
            body = _take_frame(inst.rbuf)
        except _Lost:
            self._unwatch(inst.sock)
            _killpg(inst.pid)
            return
        if body is None:
            return
        self._unwatch(inst.sock)
        if what == "answer":
            self._release(inst, answered=True)
            return
        try:
            message = json.loads(body)
        except ValueError:
            message = {}
        self._on_startup_message(inst, message)

    def _on_startup_message(self, inst: _Instance, message: dict) -> None:
        deliveries: list[tuple[_Waiter, _Instance | str]] = []
        with self._lock:
            if message.get("op") != "ready":
                inst.failure = message.get("error") or "the worker sent an unexpected first answer"
                last = (message.get("traceback") or "").strip().splitlines()[-1:]
                if last and last[0] not in {line.text for line in inst.log.lines}:
                    # user code took stderr away: the traceback is not in the log, so it goes into the error
                    inst.failure += "\n" + message["traceback"]
                inst.kill_at = time.monotonic() + 2.0  # it exits by itself; if it hangs, SIGKILL
                return
            inst.ready_at = time.monotonic()
            inst.last_used = inst.ready_at
            inst.batch = bool(message.get("batch"))
            inst.system(f"ready after {inst.ready_at - inst.spawned_at:.2f} s")
            inst.started.set()
            dep = inst.dep
            if inst.state != "starting":  # stopped while it started
                self._commands.append(("stop", inst, True))
                return
            inst.state = "ready"
            if dep is None:  # a check: it is stopped by check()
                return
            dep.failures = 0
            dep.error = None
            if self._deployments.get(dep.spec.key) is not dep or inst.generation != dep.generation:
                self._stop_locked(inst, "no longer needed")
                return
            while dep.waiters:
                waiter = dep.waiters.popleft()
                if not waiter.future.done():
                    self._hold_locked(inst, waiter.deadline)
                    deliveries.append((waiter, inst))
                    break
            else:
                dep.idle.append(inst)
        self._deliver_all(deliveries)

    def _read_log(self, inst: _Instance, pipe: Any, stream: str, *, drain: bool = False) -> bool:
        """Move what ``pipe`` holds into the instance's log (everything when ``drain``); True at its end."""
        with self._lock:
            return self._read_log_locked(inst, pipe, stream, drain=drain)

    def _read_log_locked(self, inst: _Instance, pipe: Any, stream: str, *, drain: bool = False) -> bool:
        while True:
            try:
                chunk = os.read(pipe.fileno(), 1 << 16)
            except BlockingIOError:
                return False
            except (OSError, ValueError):
                chunk = b""
            buf = inst.log.pending.get(stream, b"") + chunk
            lines = buf.split(b"\n")
            buf = lines.pop()
            if buf and (not chunk or len(buf) > LOG_LINE_CHARS):
                lines.append(buf)
                buf = b""
            inst.log.pending[stream] = buf
            now = time.time()
            for raw in lines:
                text = raw.decode("utf-8", "replace").rstrip("\r")[:LOG_LINE_CHARS]
                inst.log.add(LogLine(now, inst.name, inst.pid, stream, text))
            if not chunk:
                return True
            if not drain:
                return False

    def _housekeep(self, now: float) -> None:
        kills: list[_Instance] = []
        deliveries: list[tuple[Any, Any]] = []
        with self._lock:
            for inst in list(self._instances):
                if inst.proc is None and inst.exit_code is None and now > inst.deadline:  # never got a process
                    inst.failure = inst.failure or "the worker process could not be started"
                    inst.exit_code = -1
                    self._finalize_if_done_locked(inst)
                    continue
                if inst.proc is not None and inst.exit_code is None:
                    code = inst.proc.poll()
                    if code is not None:
                        if code > 128 and inst.launch is not None and inst.launch.isolated:
                            code = 128 - code  # bwrap exits 128 + N when its command was killed by signal N
                        inst.exit_code = code
                        _killpg(inst.pid)  # whatever it started goes with it, before anyone hears it ended
                        if inst.holder == "drain":
                            inst.holder = None
                            inst.broken = inst.broken or "exited"
                            deliveries += self._settle_pipe_locked(inst, head_done=False)
                        self._finalize_if_done_locked(inst)
                        continue
                if inst.exit_code is not None:
                    continue
                if inst.state == "starting" and inst.ready_at is None and now > inst.deadline:
                    if inst.failure is None:
                        inst.failure = f"Deployment did not start within {now - inst.spawned_at:.0f} s"
                    inst.system(inst.failure)
                    kills.append(inst)
                elif inst.kill_at is not None and now > inst.kill_at:
                    kills.append(inst)
                elif inst.holder == "drain" and now > inst.deadline:
                    inst.broken = "request timed out after its caller left"
                    kills.append(inst)
            for dep in self._deployments.values():
                spec = dep.spec
                current = dep.current()
                excess = len(current) - spec.minimum_instances
                for inst in sorted(dep.idle, key=lambda i: i.last_used):
                    idle_for = now - inst.last_used
                    if excess > 0 and (idle_for > spec.maximum_idle_time or len(current) > spec.maximum_instances):
                        self._stop_locked(inst, f"idle for {idle_for:.1f} s")
                        excess -= 1
                        current.remove(inst)
                self._plan_locked(dep)
        for inst in kills:
            _killpg(inst.pid)
        self._deliver_all(deliveries)


async def _recv(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> bytes:
    """What the socket has (b"" at its end), waiting until it has something. Unlike ``loop.sock_recv``, a
    cancellation can only come while nothing was read, so no answer is lost from the stream when a caller leaves
    (the next reader finds the stream where this one left it)."""
    while True:
        try:
            return sock.recv(1 << 18)
        except (BlockingIOError, InterruptedError):
            pass
        readable = loop.create_future()
        fd = sock.fileno()
        loop.add_reader(fd, _set_done, readable)
        try:
            await readable
        finally:
            loop.remove_reader(fd)


def _set_done(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


def _expire(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result("timeout")


def _stream_of(inst: _Instance, pipe: Any) -> str:
    return "stdout" if inst.proc is not None and pipe is inst.proc.stdout else "stderr"


def _validate(spec: WorkerSpec) -> None:
    if spec.minimum_instances < 0 or spec.maximum_instances < 1 or spec.minimum_instances > spec.maximum_instances:
        raise ValueError("need 0 <= minimum_instances <= maximum_instances and maximum_instances >= 1")
    if spec.request_timeout <= 0 or spec.startup_timeout <= 0 or spec.maximum_idle_time < 0:
        raise ValueError("timeouts must be positive")
    if spec.maximum_queue < 0:
        raise ValueError("maximum_queue must be >= 0")
    if not all(isinstance(k, str) and isinstance(v, str) and k and "=" not in k for k, v in spec.env_vars.items()):
        raise ValueError("env_vars must map names (without '=') to strings")


def _failed(t0: float, error: str) -> Result:
    return Result(ok=False, error=error, duration_ms=(time.monotonic() - t0) * 1000.0)


def _answer(t0: float, reply: dict | str) -> Result:
    duration = (time.monotonic() - t0) * 1000.0
    if isinstance(reply, str):
        return Result(ok=False, error=reply, duration_ms=duration)
    if "items" in reply:
        items = tuple(
            Result(ok=bool(a.get("ok")), value=a.get("value"), error=a.get("error"), traceback=a.get("traceback"))
            for a in reply["items"]
        )
        first = next(((n, a) for n, a in enumerate(items) if not a.ok), None)
        return Result(
            ok=first is None,
            value=[a.value for a in items],
            error=None if first is None else f"item {first[0]}: {first[1].error}",
            traceback=None if first is None else first[1].traceback,
            duration_ms=duration,
            items=items,
        )
    if "values" in reply:
        values = reply["values"]
        return Result(
            ok=True, value=values, duration_ms=duration, items=tuple(Result(ok=True, value=v) for v in values)
        )
    return Result(
        ok=bool(reply.get("ok")),
        value=reply.get("value"),
        error=reply.get("error"),
        traceback=reply.get("traceback"),
        duration_ms=duration,
    )
