"""Isolation of user code: every workload process runs in a sandbox that cannot reach the server.

User code (a deployment's ``deployment.py``, and later jobs, workspaces and apps) is started through
:meth:`Sandbox.launch`, which wraps the command in bubblewrap (``bwrap``, Debian's ``bubblewrap``):

- **its own identity**: started by root, each instance gets an unprivileged uid/gid of its own for its whole life
  (``UID_BASE`` + n, claimed with a lock file in ``LOCK_DIR`` so several servers on one machine never share one),
  no supplementary groups, no capabilities, ``no_new_privs`` (``setpriv``). Started by another user, bwrap makes
  an unprivileged user namespace: the same uid outside, but namespaced and capability-free.
- **its own view of the machine**: new mount, PID, IPC and UTS namespaces. The root is empty but for ``/usr``
  (read-only), a few files of ``/etc`` (certificates, resolver, time zone, linker cache), a fresh ``/proc`` that
  shows only its own processes, a minimal ``/dev``, a private ``/tmp`` (tmpfs, counted in its memory), its
  interpreter's installation (read-only), its package at ``/home/deployment`` (read-only) and the worker program.
  No data directory, secret key, database file, other workloads' packages, nor the server's ``/proc``.
- **a clean environment**: only what its configuration gives it (its variables and secrets) plus ``PATH``,
  ``HOME``/``TMPDIR`` (``/tmp``) and the locale. The variables go to bwrap through a memfd (``--args``), never on
  a command line, and nothing of the user's reaches a process that runs before the sandbox exists (no
  ``LD_PRELOAD`` into the launcher).
- **limits**: memory, CPU and process count per instance in a cgroup of its own (``compute/cgroups.py``) where
  the machine lets us create one, else ``RLIMIT_AS``; ``RLIMIT_NPROC`` (per instance, since each has its own uid),
  ``RLIMIT_FSIZE`` and no core dumps always (``prlimit``).
- **it cannot signal** the server or other workloads: they are outside its PID namespace and run as other uids.
- **network**: the host's by default (a deployment may call outside services); ``network="none"`` gives it an
  empty network namespace (loopback only, its own).

Without bwrap, or where it cannot make namespaces, the server is not isolated: it then runs only the code of its
home organisation (``default``, the one its bootstrap admin owns) unless ``single_tenant`` says every organisation's code is
trusted, and says why at start-up. See docs/security.md for the threat model.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import random
import shutil
import subprocess
import sys
import sysconfig
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from modelharbor.compute.base import Limits
from modelharbor.compute.cgroups import Cgroups, Group

log = logging.getLogger(__name__)

PACKAGE_MOUNT = "/home/deployment"
WORKER_MOUNT = "/opt/modelharbor/worker_main.py"
LOCK_DIR = Path("/run/modelharbor/workload-uids")
# What of /etc a Python program needs to resolve names, verify TLS, know the time zone and load libraries.
ETC_FILES = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/nsswitch.conf",
    "/etc/services",
    "/etc/protocols",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/mime.types",
    "/etc/alternatives",
)
LOCALE_VARS = ("LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ")
# The launcher's own environment: nothing of the workload's (it runs before the sandbox exists).
LAUNCH_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
_JOIN_CGROUP = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n-1)); done; exec "$@"'


class SandboxError(Exception):
    """The sandbox could not be made for a workload; the message says why and what to do."""


@dataclass
class Launch:
    """What to start for one instance: ``argv`` with ``env``, ``pass_fds``, ``cwd``; ``close()`` after it ended."""

    argv: list[str]
    env: dict[str, str]
    cwd: str | None
    pass_fds: tuple[int, ...] = ()
    isolated: bool = False
    uid: int | None = None
    memory_limit: int | None = None  # bytes, when a cgroup enforces it (see exceeded())
    _release: list = field(default_factory=list)
    _group: Group | None = None
    _oom_kills: int | None = None  # read when the group was removed

    def exceeded(self) -> str | None:
        """Why the kernel ended the process, when it did so for going over its memory limit (its cgroup counted an
        OOM kill); None otherwise. Readable before and after :meth:`close`."""
        kills = self._oom_kills if self._oom_kills is not None else _oom_kills(self._group)
        if not kills or not self.memory_limit:
            return None
        return f"it went over its memory limit of {self.memory_limit / 2**20:g} MiB and the kernel stopped it"

    def started(self) -> None:
        """The process is started (or failed to): the descriptors handed to it can go."""
        for _kind, fd in [r for r in self._release if r[0] == "fd"]:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._release = [r for r in self._release if r[0] != "fd"]

    def close(self) -> None:
        """The process and everything it started have ended: give back its uid and remove its cgroup."""
        if self._group is not None and self._oom_kills is None:
            self._oom_kills = _oom_kills(self._group)
        for kind, obj in reversed(self._release):
            with contextlib.suppress(OSError):
                if kind == "fd":
                    os.close(obj)
                elif kind == "lock":
                    obj.close()
                elif kind == "group":
                    obj.remove()
        self._release.clear()


def _oom_kills(group: Group | None) -> int:
    """OOM kills the group's memory controller counted (v1 ``memory.oom_control``, v2 ``memory.events``)."""
    return 0 if group is None else group.memory_events().get("oom_kill", 0)


class _UidPool:
    """Unprivileged uids, one per running instance, claimed machine-wide with ``flock`` on ``LOCK_DIR/<uid>``."""

    def __init__(self, lock_dir: Path, base: int, count: int):
        self.lock_dir, self.base, self.count = Path(lock_dir), base, count
        self._lock = threading.Lock()

    def acquire(self):
        self.lock_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        start = random.randrange(self.count)
        with self._lock:
            for i in range(self.count):
                uid = self.base + (start + i) % self.count
                f = open(self.lock_dir / str(uid), "a")  # noqa: SIM115 - held open while the uid is in use
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    f.close()
                    continue
                return uid, f
        raise SandboxError(f"all {self.count} workload uids from {self.base} are in use")


class Sandbox:
    """Starts user code isolated (see the module docstring). Thread-safe."""

    def __init__(
        self,
        mode: str = "auto",
        *,
        network: str = "host",
        single_tenant: bool = False,
        limits: Limits | None = None,
        uid_base: int = 1_100_000,
        uid_count: int = 100_000,
        lock_dir: Path = LOCK_DIR,
        private: tuple[Path, ...] = (),
        use_cgroups: bool = True,
        home_tenant: Callable[[], str | None] | None = None,
    ):
        if mode not in ("auto", "bwrap", "off"):
            raise ValueError(f"sandbox mode {mode!r}: auto, bwrap or off")
        if network not in ("host", "none"):
            raise ValueError(f"sandbox network {network!r}: host or none")
        self.mode = mode
        self.network = network
        self.single_tenant = single_tenant
        self.limits = limits or Limits()
        self.private = tuple(Path(p).resolve() for p in private)  # never bound into a sandbox, nor any parent
        self._home_tenant = home_tenant or (lambda: None)  # read when unisolated code asks to run
        self._root = os.geteuid() == 0
        self._uids = _UidPool(lock_dir, uid_base, uid_count) if self._root else None
        self._use_cgroups = use_cgroups
        self._cgroups: Cgroups | None = None
        self._probed = False
        self._isolated = False
        self._reason = ""
        self._probe_lock = threading.Lock()
        self._bwrap = shutil.which("bwrap")
        self._setpriv = shutil.which("setpriv")
        self._prlimit = shutil.which("prlimit")

    # ------------------------------------------------------------------ what this machine allows

    @property
    def isolated(self) -> bool:
        self._probe()
        return self._isolated

    @property
    def reason(self) -> str:
        """Why user code is not isolated ("" when it is)."""
        self._probe()
        return self._reason

    @property
    def cgroups(self) -> Cgroups | None:
        self._probe()
        return self._cgroups

    def describe(self) -> str:
        """One line for the start-up log."""
        if self.isolated:
            how = "per-instance uid" if self._root else "user namespace"
            res = f"cgroup v{self._cgroups.version}" if self._cgroups else "rlimits"
            return f"user code runs isolated (bubblewrap, {how}, limits by {res}, network {self.network})"
        if self.single_tenant:
            return f"user code runs NOT isolated ({self._reason}); MODELHARBOR_SINGLE_TENANT trusts every organisation"
        return (
            f"user code runs NOT isolated ({self._reason}): only the home organisation's deployments start; "
            "install bubblewrap (Debian: apt-get install bubblewrap) or set MODELHARBOR_SINGLE_TENANT=true"
        )

    def refusal(self, tenant: str | None) -> str | None:
        """Why code of ``tenant`` (an organisation id) may not run here, or None."""
        if self.isolated or self.single_tenant:
            return None
        if tenant is not None and tenant == self._home_tenant():
            return None
        return (
            f"this server cannot isolate user code ({self.reason}), so it runs only its home organisation's code. "
            "Ask the operator to install bubblewrap (Debian: apt-get install bubblewrap) or, if every "
            "organisation on this server is trusted, to set MODELHARBOR_SINGLE_TENANT=true."
        )

    def _probe(self) -> None:
        if self._probed:
            return
        with self._probe_lock:
            if self._probed:
                return
            self._isolated, self._reason = self._try()
            if self._isolated and self._use_cgroups and self._root:
                self._cgroups = Cgroups.detect()
            self._probed = True

    def _try(self) -> tuple[bool, str]:
        if self.mode == "off":
            return False, "MODELHARBOR_SANDBOX=off"
        if sys.platform != "linux":
            return False, "isolation needs Linux"
        missing = [n for n, p in (("bwrap", self._bwrap), ("prlimit", self._prlimit)) if not p]
        if self._root and not self._setpriv:
            missing.append("setpriv")
        if missing:
            return False, f"{', '.join(missing)} not found"
        argv = [
            self._bwrap,
            *self._namespace_args(),
            *self._system_binds(),
            "--",
            *self._identity(1_099_999),
            "/bin/true",
        ]
        try:
            out = subprocess.run(argv, env=LAUNCH_ENV, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"bwrap did not run: {exc}"
        if out.returncode != 0:
            return False, f"bwrap cannot make a sandbox here: {out.stderr.strip() or out.returncode}"
        return True, ""

    # ------------------------------------------------------------------ launching

    def launch(
        self,
        name: str,
        *,
        python: Path,
        worker: Path,
        package_dir: Path,
        worker_args: list[str],
        env: dict[str, str],
        limits: Limits | None = None,
        pass_fds: tuple[int, ...] = (),
    ) -> Launch:
        """How to start ``python -u worker --package DIR *worker_args`` for instance ``name``: isolated when
        this machine allows it, else plainly (after :meth:`refusal` said it may run at all)."""
        limits = limits.within(self.limits) if limits is not None else self.limits
        if limits.gpus:
            raise SandboxError(
                f"the workload asks for {limits.gpus} GPU(s) (its hardware tier's) but the local executor has none "
                "to give: run it on a tier without GPUs"
            )
        if not self.isolated:
            if self.mode == "bwrap":
                raise SandboxError(f"MODELHARBOR_SANDBOX=bwrap but {self.reason}")
            argv = [str(python), "-u", str(worker), "--package", str(package_dir), *worker_args]
            return Launch(argv=argv, env=env, cwd=str(package_dir), pass_fds=pass_fds)
        launch = Launch(argv=[], env=dict(LAUNCH_ENV), cwd="/", pass_fds=pass_fds, isolated=True)
        try:
            self._build(launch, name, python, worker, package_dir, worker_args, env, limits)
        except BaseException:
            launch.close()
            raise
        return launch

    def _build(self, launch, name, python, worker, package_dir, worker_args, env, limits) -> None:
        uid = None
        if self._uids is not None:
            uid, lock = self._uids.acquire()
            launch._release.append(("lock", lock))
            launch.uid = uid
        binds = [*self._python_binds(python), (str(worker), WORKER_MOUNT), (str(package_dir), PACKAGE_MOUNT)]
        bwrap_args = [*self._namespace_args(), *self._system_binds(), "--perms", "01777", "--tmpfs", "/tmp"]
        made: set[str] = set()
        for source, dest in binds:
            # bwrap makes missing parents 0700 (root's): the workload's uid must be able to pass through them
            for parent in reversed(Path(dest).parents[:-1]):
                if str(parent) not in made:
                    made.add(str(parent))
                    bwrap_args += ["--perms", "0755", "--dir", str(parent)]
            bwrap_args += ["--ro-bind", source, dest]
        bwrap_args += ["--chdir", PACKAGE_MOUNT, "--clearenv"]
        inner_env = {
            "PATH": f"{python.parent}:/usr/local/bin:/usr/bin:/bin",
            "HOME": "/tmp",
            "TMPDIR": "/tmp",
            **{k: os.environ[k] for k in LOCALE_VARS if k in os.environ},
            **env,
        }
        for key, value in inner_env.items():
            if "=" in key or "\0" in key or "\0" in value or not key:
                raise SandboxError(f"environment variable {key!r} cannot be passed (name with '=' or NUL)")
            bwrap_args += ["--setenv", key, value]
        fd = os.memfd_create(f"sandbox-{name}", 0)
        launch._release.append(("fd", fd))
        os.write(fd, b"".join(a.encode() + b"\0" for a in bwrap_args))
        os.lseek(fd, 0, os.SEEK_SET)
        command = [
            self._bwrap,
            "--args",
            str(fd),
            "--",
            *self._identity(uid),
            str(python),
            "-u",
            WORKER_MOUNT,
            "--package",
            PACKAGE_MOUNT,
            *worker_args,
        ]
        rlimits = ["--core=0"]
        if limits.processes:
            rlimits.append(f"--nproc={limits.processes}" if uid is not None else "")
        if limits.file_size:
            rlimits.append(f"--fsize={limits.file_size}")
        group: Group | None = None
        if self._cgroups is not None:
            try:
                group = self._cgroups.create(
                    f"w-{name}-{uid or os.getpid()}", memory=limits.memory, cpus=limits.cpus, processes=limits.processes
                )
            except OSError as exc:
                log.warning("could not create a cgroup for %s (%s): falling back to rlimits", name, exc)
        if group is not None:
            launch._release.append(("group", group))
            launch._group, launch.memory_limit = group, limits.memory
        elif limits.memory:
            rlimits.append(f"--as={limits.memory}")
        argv = [self._prlimit, *[r for r in rlimits if r], "--", *command]
        if group is not None:
            argv = ["/bin/sh", "-c", _JOIN_CGROUP, "sh", str(len(group.procs)), *map(str, group.procs), *argv]
        launch.argv = argv
        launch.pass_fds = (*launch.pass_fds, fd)

    def _namespace_args(self) -> list[str]:
        args = ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--die-with-parent"]
        args += ["--hostname", "workload"]
        if not self._root:
            args += ["--unshare-user", "--disable-userns"]
        if self.network == "none":
            args.append("--unshare-net")
        return args

    @staticmethod
    def _system_binds() -> list[str]:
        args = ["--ro-bind", "/usr", "/usr"]
        for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            if os.path.islink(top):
                args += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                args += ["--ro-bind", top, top]
        for path in ETC_FILES:
            args += ["--ro-bind-try", path, path]
        return [*args, "--proc", "/proc", "--dev", "/dev"]

    def _identity(self, uid: int | None) -> list[str]:
        if uid is None or not self._root:
            return []
        return [
            self._setpriv,
            f"--reuid={uid}",
            f"--regid={uid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            "--",
        ]

    def _python_binds(self, python: Path) -> list[tuple[str, str]]:
        binds: list[tuple[str, str]] = []
        for path in python_roots(python):
            if path == Path("/usr") or Path("/usr") in path.parents:
                continue
            if any(p == path or path in p.parents for p in self.private):
                raise SandboxError(
                    f"the interpreter {python} lives in {path}, which holds the server's private data "
                    f"({', '.join(map(str, self.private))}); put the data directory elsewhere"
                )
            binds.append((str(path), str(path)))
        return binds


def python_roots(python: Path) -> list[Path]:
    """The installations an interpreter needs at run time, outermost first, without nesting: a virtual
    environment's folder and its base installation's prefix (from ``pyvenv.cfg``, symlinks followed), and, for the
    server's own interpreter, the server's prefixes and site folders (environments may share its packages)."""
    python = Path(python).absolute()
    roots: list[Path] = []
    venv = python.parent.parent
    cfg = venv / "pyvenv.cfg"
    if cfg.is_file():
        roots.append(venv)
        for line in cfg.read_text(errors="replace").splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "home" and value.strip():
                home = Path(value.strip())
                roots += [home.parent, home.resolve().parent]
    real = python.resolve()
    roots.append(real.parent.parent)
    if real == Path(sys.executable).resolve() or cfg.is_file():
        roots += [Path(sys.prefix), Path(sys.base_prefix)]
        roots += [Path(p) for p in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}]
    out: list[Path] = []
    for root in sorted({r.resolve() if r.is_symlink() else r for r in roots if r.is_dir()}, key=lambda p: len(p.parts)):
        if not any(o == root or o in root.parents for o in out):
            out.append(root)
    return out


def share_read_only(root: Path) -> None:
    """Make a tree a workload reads through a read-only mount readable by any uid (folders 0755, files 0644,
    executables 0755). Only the mount makes it reachable: it stays inside the private data directory."""
    for folder, _dirs, files in os.walk(root):
        os.chmod(folder, 0o755)
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                os.chmod(path, 0o755 if os.stat(path).st_mode & 0o100 else 0o644)
