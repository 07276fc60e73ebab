"""``LocalExecutor``: the executor protocol (``compute/base.py``) over the request path, pipelining and supervisor.

It owns the state those share (the lock, the deployments, the instances, the supervisor's command queue and
selector), starts the supervisor thread, and answers ``deploy``/``check``/``undeploy``/``status``/``logs``/
``shutdown`` from any thread; ``request`` is ``Dispatcher.request``.
"""

from __future__ import annotations

import atexit
import contextlib
import heapq
import itertools
import logging
import selectors
import signal
import socket
import subprocess
import threading
import time
from collections import deque

from modelharbor.compute.base import LogLine, WorkerSpec, WorkerStatus
from modelharbor.compute.local.dispatch import Dispatcher
from modelharbor.compute.local.pipelining import Pipeliner
from modelharbor.compute.local.state import _Deployment, _Instance, _killpg
from modelharbor.compute.local.supervisor import Supervisor
from modelharbor.compute.sandbox import Sandbox

log = logging.getLogger(__package__)

# What a worker inherits from the server's environment: enough to run, nothing of the server's configuration
# or secrets (MODELHARBOR_*, cloud credentials). The spec's env_vars come on top.
PASSED_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")


class LocalExecutor(Dispatcher, Pipeliner, Supervisor):
    """Runs deployment versions as local worker processes (see ``modelharbor.compute.local`` and docs/compute.md).

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

    def statuses(self) -> list[WorkerStatus]:
        with self._lock:
            keys = list(self._deployments)
        return [self.status(key) for key in keys]

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


def _runs_differently(a: WorkerSpec, b: WorkerSpec) -> bool:
    return (a.revision, a.package_dir, a.environment, a.env_vars, a.context) != (
        b.revision,
        b.package_dir,
        b.environment,
        b.env_vars,
        b.context,
    )


def _validate(spec: WorkerSpec) -> None:
    if spec.minimum_instances < 0 or spec.maximum_instances < 1 or spec.minimum_instances > spec.maximum_instances:
        raise ValueError("need 0 <= minimum_instances <= maximum_instances and maximum_instances >= 1")
    if spec.request_timeout <= 0 or spec.startup_timeout <= 0 or spec.maximum_idle_time < 0:
        raise ValueError("timeouts must be positive")
    if spec.maximum_queue < 0:
        raise ValueError("maximum_queue must be >= 0")
    if not all(isinstance(k, str) and isinstance(v, str) and k and "=" not in k for k, v in spec.env_vars.items()):
        raise ValueError("env_vars must map names (without '=') to strings")
