"""The supervisor: one daemon thread that does everything but serve requests.

It starts processes (through the sandbox), reads their stdout/stderr into bounded in-memory logs, reads their
start-up answer, reaps exits (health check), replaces dead instances, backs off from crash loops, stops idle
instances above the minimum, drains replaced revisions and reads (and drops) the answers of requests whose
caller left. Only it touches its selector and closes instance sockets and pipes. Other threads give it work
through ``_commands`` and wake it (``_wake``); the planning methods (``_plan_locked``, ``_stop_locked``,
``_finalize_if_done_locked``) run under the executor lock in whichever thread changed something.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import selectors
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from modelharbor.compute.base import LogLine
from modelharbor.compute.local.framing import _encode, _Lost, _take_frame
from modelharbor.compute.local.state import _Deployment, _Instance, _killpg, _stream_of, _Waiter
from modelharbor.compute.sandbox import Sandbox, SandboxError

log = logging.getLogger(__package__)

WORKER_MAIN = Path(__file__).parent.with_name("worker_main.py")
LOG_LINE_CHARS = 16_384
ERROR_LOG_LINES = 30


class Supervisor:
    """The supervisor thread and the planning of instances, for ``LocalExecutor`` (a mixin: the state is the
    executor's). It uses ``Dispatcher``'s ``_release``/``_hold_locked``/``_end``/``_deliver_all`` and
    ``Pipeliner``'s ``_settle_pipe_locked``."""

    sandbox: Sandbox
    _lock: threading.Lock
    _deployments: dict[str, _Deployment]
    _instances: set[_Instance]
    _commands: deque[tuple]
    _seq: itertools.count
    _closed: bool
    _poll_now: bool
    _selector: selectors.BaseSelector
    _wake_r: socket.socket
    _wake_w: socket.socket
    _startup_failures: int
    _backoff: float
    _backoff_max: float
    _stop_grace: float
    _log_bytes: int
    _tick: float
    _passed_env: tuple[str, ...]

    # ------------------------------------------------------------------ planning (under the lock, any thread)

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
        inst.system(f"exited ({inst.exit_text()})")
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
        head = inst.failure or f"the worker exited before it was ready ({inst.exit_text()})"
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
                    code = inst.poll()
                    if code is not None:
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
