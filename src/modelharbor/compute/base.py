"""Where user code runs: the executor interface the serving core talks to.

The core never starts processes itself. It describes what should run (a :class:`WorkerSpec` per deployment
version revision), asks the executor to answer requests for it, and reads its status and logs. The embedded
default is :class:`modelharbor.compute.local.LocalExecutor` (one OS process per instance, on this machine); a
distributed engine (Ray Serve / Ray Jobs, planned next) implements the same protocol, so nothing in the core
changes. See ``docs/compute.md``.

Environments are built by an :class:`EnvironmentBuilder`: a base environment (a Python interpreter present on
the machine) plus an optional ``requirements.txt`` becomes an isolated environment, built once per environment
revision, with a build log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class Environment:
    """A built environment: the interpreter that runs worker processes in it."""

    key: str  # stable id of the environment revision
    python: Path  # interpreter of the (virtual) environment
    base: str  # base environment name, e.g. "python3-11"


@dataclass(frozen=True)
class Limits:
    """Resources one instance of user code may use; None: no limit of that kind (see compute/sandbox.py)."""

    memory: int | None = None  # bytes (cgroup memory limit; RLIMIT_AS without a cgroup)
    cpus: float | None = None  # CPU cores' worth of time (cgroup CPU quota; no equivalent without a cgroup)
    processes: int | None = None  # processes and threads (cgroup pids, and RLIMIT_NPROC of its own uid)
    file_size: int | None = None  # largest file it may write (RLIMIT_FSIZE), bytes
    gpus: int | None = None  # GPUs it needs; the local executor has none to give: such a spec fails to start

    def within(self, ceiling: Limits) -> Limits:
        """These limits under the server's (``ceiling``, MODELHARBOR_WORKLOAD_*): each kind the smaller of the two,
        or whichever is set — so a hardware tier sets a workload's CPU and memory but never lifts it above what the
        operator allows, and the process and file-size limits stay the operator's."""

        def least(a, b):
            return b if a is None else a if b is None else min(a, b)

        return Limits(
            memory=least(self.memory, ceiling.memory),
            cpus=least(self.cpus, ceiling.cpus),
            processes=least(self.processes, ceiling.processes),
            file_size=least(self.file_size, ceiling.file_size),
            gpus=self.gpus,
        )


@dataclass(frozen=True)
class WorkerSpec:
    """What to run for one deployment version revision. A changed spec under the same ``key`` replaces the
    running instances once they finish their current request when it changes what runs (revision, package,
    environment, env vars, context); a change of scaling, timeouts or queue size only applies to them."""

    key: str  # unique per deployment version, e.g. the version's id
    revision: str  # the package revision; instances of an older revision are replaced
    package_dir: Path  # unpacked package: holds deployment.py (class Deployment with request(data))
    environment: Environment
    env_vars: dict[str, str] = field(default_factory=dict)  # secrets already decrypted; never logged
    minimum_instances: int = 0
    maximum_instances: int = 1
    maximum_idle_time: float = 300.0  # seconds an idle instance above the minimum lives
    request_timeout: float = 300.0  # seconds one request may take; then the instance is killed and restarted
    context: dict[str, Any] = field(default_factory=dict)  # passed to Deployment(base_directory, context)
    maximum_queue: int = 256  # requests waiting for a free instance; one more is answered "queue full"
    startup_timeout: float = 600.0  # seconds Deployment.__init__ may take (loading a model) before it failed
    tenant: str | None = None  # the organisation whose code this is: decides whether it may run unisolated
    limits: Limits | None = None  # per-instance resources (a hardware tier's); None fields: the sandbox defaults


@dataclass(frozen=True)
class Result:
    ok: bool
    value: Any = None  # the JSON value request() returned (ok); for a batch the list of values (None if failed)
    error: str | None = None  # what went wrong (not ok): the exception and its message, a timeout, a crash
    duration_ms: float = 0.0  # time spent in Executor.request (waiting for an instance included)
    traceback: str | None = None  # the last lines of the traceback when user code raised
    items: tuple[Result, ...] | None = None  # a batch answered item by item: one Result per item


@dataclass(frozen=True)
class InstanceStatus:
    pid: int | None
    state: str  # "starting" | "ready" | "busy" | "stopping" | "failed"
    revision: str
    requests: int  # answered so far
    started_at: float  # wall-clock time (time.time())
    id: str = ""  # executor-unique instance name, as in LogLine.instance


@dataclass(frozen=True)
class WorkerStatus:
    key: str
    state: str  # "stopped" | "starting" | "running" | "failed"
    instances: tuple[InstanceStatus, ...] = ()
    error: str | None = None  # why the last start failed (e.g. deployment.py raised), with the log tail
    restarts: int = 0  # instances that ended unexpectedly (crashed, killed, timed out, failed to start)
    queued: int = 0  # requests waiting for a free instance
    log: str = ""  # check() only: what the checked instance printed while it started


@dataclass(frozen=True)
class LogLine:
    """One line user code (or the executor, stream "system") wrote for a deployment version."""

    time: float  # wall-clock time the line was read
    instance: str  # InstanceStatus.id
    pid: int | None
    stream: str  # "stdout" | "stderr" | "system"
    text: str


class Executor(Protocol):
    """Runs deployment versions. Thread-safe; ``request`` is a coroutine and may be awaited concurrently (from
    any event loop); the other methods are plain calls that may block briefly (call them from a thread)."""

    def deploy(self, spec: WorkerSpec) -> None:
        """Register or replace the spec for ``spec.key``; starts ``minimum_instances`` instances (others start
        on demand). Returns at once: starting happens in the background. Deploying a spec equal to the current
        one changes nothing (a version that ``failed`` stays failed until a different spec is deployed)."""

    def check(self, spec: WorkerSpec, timeout: float = 60.0) -> WorkerStatus:
        """Start one instance of ``spec`` in isolation, wait until it initialised (``Deployment.__init__`` ran)
        or failed, stop it, and report: state "stopped" when it started, "failed" with ``error`` otherwise;
        ``log`` holds what it printed. Used to validate a new package revision before it serves."""

    async def request(
        self, key: str, data: Any, *, timeout: float | None = None, context: dict[str, Any] | None = None
    ) -> Result:
        """Send one request (``data`` as request() receives it: a dict or a str; a list is a batch) to an
        instance of ``key``, starting one if none is free and fewer than the maximum run; queue otherwise.
        ``timeout`` (default the spec's ``request_timeout``) bounds the whole call; when it runs out while user
        code works, the instance is killed and replaced. ``context`` is passed as request(data, context) to a
        request method that takes two arguments. Never raises for what user code does: see ``Result``."""

    def undeploy(self, key: str) -> None:
        """Stop every instance of ``key`` (a busy one after its current request) and forget the spec."""

    def status(self, key: str) -> WorkerStatus: ...

    def statuses(self) -> list[WorkerStatus]:
        """The status of every deployed key (the server's metrics: instances by state, queued requests)."""

    def logs(self, key: str, since: float | None = None) -> list[LogLine]:
        """What the instances of ``key`` printed (bounded: the newest lines), oldest first; ``since`` a
        wall-clock time to read only newer lines."""

    def shutdown(self) -> None:
        """Stop everything (server shutdown)."""


class EnvironmentBuilder(Protocol):
    def base_environments(self) -> dict[str, Path]:
        """Base environment names (``python3-11``, …) mapped to interpreters present on this machine."""

    def build(self, key: str, base: str, requirements: str | None, log: Callable[[str], None]) -> Environment:
        """Build (once; later calls with the same key return the built one) an isolated environment from the
        base interpreter and the requirements; ``log`` receives build output lines. Raises BuildFailed."""


class BuildFailed(Exception):
    """An environment or package could not be built; the message says why (and ends with the log tail)."""
