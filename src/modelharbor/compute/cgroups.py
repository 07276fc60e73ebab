"""Control groups for workloads: a memory, CPU and process-count limit per instance of user code.

Linux offers two layouts and both are found in the wild:

- **v2** (the unified hierarchy, systemd's default): one tree, ``/sys/fs/cgroup``; a group's limits are
  ``memory.max``, ``memory.swap.max``, ``cpu.max`` and ``pids.max``. Our groups live under
  ``/sys/fs/cgroup/modelharbor/`` with the controllers enabled in the root's and our ``cgroup.subtree_control``.
- **v1** (one tree per controller, ``/sys/fs/cgroup/memory``, ``…/cpu``, ``…/pids``): the same limits are
  ``memory.limit_in_bytes`` (+ ``memory.memsw.limit_in_bytes`` where swap is accounted), ``cpu.cfs_quota_us`` over
  ``cpu.cfs_period_us`` and ``pids.max``; our groups are ``<controller>/modelharbor/<name>``.

Creating groups takes write access to the hierarchy (root, or a delegated subtree); without it
:meth:`Cgroups.detect` returns None and the sandbox falls back to resource limits (``setrlimit``). A process is put
in a group by writing its pid to each ``cgroup.procs`` file before it starts user code (the sandbox's launcher does
it for itself, so everything it starts is inside from its first instruction).
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

ROOT = Path("/sys/fs/cgroup")
PARENT = "modelharbor"
CPU_PERIOD_US = 100_000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class Group:
    """One workload's group: write a pid to every file of ``procs`` to put that process in it."""

    name: str
    dirs: tuple[Path, ...]

    @property
    def procs(self) -> tuple[Path, ...]:
        return tuple(d / "cgroup.procs" for d in self.dirs)

    def remove(self, wait: float = 2.0) -> None:
        """Remove the group once its processes are gone (they may still be exiting: retried for ``wait`` s)."""
        deadline = time.monotonic() + wait
        for d in self.dirs:
            while True:
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() >= deadline:
                        log.warning("cgroup %s still has processes; left for the next start to remove", d)
                        break
                    time.sleep(0.02)

    def memory_events(self) -> dict[str, int]:
        """OOM kills and limit hits so far (v2 ``memory.events``, v1 ``memory.failcnt``/``memory.oom_control``)."""
        out: dict[str, int] = {}
        for d in self.dirs:
            for name in ("memory.events", "memory.oom_control"):
                with contextlib.suppress(OSError, ValueError):
                    for line in (d / name).read_text().splitlines():
                        key, _, value = line.partition(" ")
                        out[key] = int(value)
        return out


class Cgroups:
    """The hierarchy this machine has, writable by us. Use :meth:`detect`."""

    def __init__(self, version: int, dirs: dict[str, Path]):
        self.version = version
        self._dirs = dirs  # controller -> our parent group's directory (v2: the same one for all)

    def sweep(self, older_than: float = 60.0) -> int:
        """Remove our groups that no process uses any more (a killed server's); a group with processes, or one
        younger than ``older_than`` seconds (another server may be about to start a process in it), stays."""
        removed = 0
        cutoff = time.time() - older_than
        for parent in set(self._dirs.values()):
            for d in parent.iterdir():
                with contextlib.suppress(OSError):
                    if d.is_dir() and d.stat().st_mtime < cutoff:
                        d.rmdir()  # refused while a process is in it
                        removed += 1
        return removed

    @property
    def controllers(self) -> tuple[str, ...]:
        return tuple(sorted(self._dirs))

    @classmethod
    def detect(cls, root: Path = ROOT) -> Cgroups | None:
        """The writable hierarchy with at least the memory controller, our parent group created; else None."""
        try:
            found = cls._detect_v2(root) if (root / "cgroup.controllers").is_file() else cls._detect_v1(root)
            if found is not None:
                found.sweep()
            return found
        except OSError as exc:
            log.debug("no writable cgroup hierarchy: %s", exc)
            return None

    @classmethod
    def _detect_v2(cls, root: Path) -> Cgroups | None:
        available = set((root / "cgroup.controllers").read_text().split())
        wanted = [c for c in ("memory", "cpu", "pids") if c in available]
        if "memory" not in wanted:
            return None
        parent = root / PARENT
        parent.mkdir(exist_ok=True)
        for d in (root, parent):
            enabled = set((d / "cgroup.subtree_control").read_text().split())
            missing = [c for c in wanted if c not in enabled]
            if missing:
                (d / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in missing))
        return cls(2, {c: parent for c in wanted})

    @classmethod
    def _detect_v1(cls, root: Path) -> Cgroups | None:
        dirs = {}
        for controller in ("memory", "cpu", "pids"):
            top = root / controller
            if not (top / "cgroup.procs").is_file():
                continue
            parent = top / PARENT
            parent.mkdir(exist_ok=True)
            dirs[controller] = parent
        if "memory" not in dirs:
            return None
        return cls(1, dirs)

    def create(self, name: str, *, memory: int | None, cpus: float | None, processes: int | None) -> Group:
        """A fresh group ``name`` with these limits (None: no limit of that kind). A leftover group of the same
        name (a crashed server's) is removed first."""
        if not _NAME.match(name):
            raise ValueError(f"cgroup name {name!r}: letters, digits, '.', '_' and '-' only")
        dirs: list[Path] = []
        for d in dict.fromkeys(p / name for p in self._dirs.values()):
            with contextlib.suppress(FileNotFoundError, OSError):
                d.rmdir()
            d.mkdir()
            dirs.append(d)
        group = Group(name, tuple(dirs))
        try:
            self._limit(name, memory, cpus, processes)
        except OSError:
            group.remove(wait=0)
            raise
        return group

    def _limit(self, name: str, memory: int | None, cpus: float | None, processes: int | None) -> None:
        def put(controller: str, file: str, value: str) -> None:
            if controller in self._dirs:
                (self._dirs[controller] / name / file).write_text(value)

        if self.version == 2:
            if memory:
                put("memory", "memory.max", str(memory))
                with contextlib.suppress(OSError):  # no swap accounting: nothing to limit
                    put("memory", "memory.swap.max", "0")
            if cpus:
                put("cpu", "cpu.max", f"{max(1000, int(cpus * CPU_PERIOD_US))} {CPU_PERIOD_US}")
            if processes:
                put("pids", "pids.max", str(processes))
            return
        if memory:
            put("memory", "memory.limit_in_bytes", str(memory))
            with contextlib.suppress(OSError):  # swap accounting off: the file is missing
                put("memory", "memory.memsw.limit_in_bytes", str(memory))
        if cpus:
            put("cpu", "cpu.cfs_period_us", str(CPU_PERIOD_US))
            put("cpu", "cpu.cfs_quota_us", str(max(1000, int(cpus * CPU_PERIOD_US))))
        if processes:
            put("pids", "pids.max", str(processes))


def current_group_of(pid: int) -> list[str]:
    """The ``/proc/<pid>/cgroup`` lines (for tests and diagnostics)."""
    try:
        return Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return []
