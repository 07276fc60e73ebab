"""Local environments: base interpreters present on this machine, and virtual environments built from them.

Base environments (``python3-11``, ``python3-12``, …):

- the version the server runs is the server's own interpreter (``sys.executable``);
- other versions are interpreters found on ``PATH`` as ``python3.N`` that actually run (a pyenv shim for a
  version that is not installed does not count), or given explicitly (``interpreters=``).

A package without a ``requirements.txt`` runs in the **base serving environment**: the base interpreter plus
:data:`SERVING_BASE` (numpy, scikit-learn; pinned), what such a deployment may import on any install. When the
server's own interpreter has exactly those (an install with the ``serving-base`` extra, or the dev extras), that
interpreter is the environment and costs nothing; otherwise (a plain ``pip install modelharbor``, another base) the
serving base is built once per base like any environment with requirements, and shared by every such package.

An environment with requirements is a virtual environment under ``root/<key>``, created once per environment
revision from the base interpreter's own installation (``--without-pip``; the server's pip installs into it
with ``pip --python``). When the base is the server's version and ``share_server_packages`` is on (default),
a ``.pth`` file adds the server's site-packages *after* the environment's own: what the requirements install
wins, everything else the server has stays importable and pip does not download it again ("already
satisfied"). Turn it off for environments that must see only what their requirements install.

pip uses the machine's pip configuration (index, find-links, certificates): no index URL is ever passed, and
a requirements file may not name one (nor other files, local paths or direct URLs).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import signal
import site
import subprocess
import sys
import sysconfig
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from pathlib import Path

from modelharbor.compute.base import BuildFailed, Environment

MARKER = ".modelharbor-environment.json"
TAIL_LINES = 40
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_NAME = re.compile(r"^python3-(\d+)$")
# Options a requirements line may carry; anything else (-i, --index-url, --extra-index-url, -f, -r, -c, -e, …)
# would reach another index or a file on the server.
# --no-binary is not among them: builds install wheels only (--only-binary=:all:), because building a source
# distribution runs its setup code with the builder's rights, outside any sandbox (docs/security.md).
_ALLOWED_OPTIONS = ("--hash", "--pre", "--prefer-binary", "--only-binary")
# The base serving environment (docs/compute.md): what a package without a requirements.txt may import. The same pins
# are pyproject.toml's optional extra ``serving-base`` (tests/test_install.py checks the two, and the docs, agree).
SERVING_BASE: tuple[str, ...] = ("numpy==2.4.6", "scikit-learn==1.9.1")
_REQUIREMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\s*(\[[A-Za-z0-9._,\s-]*\])?\s*([<>=!~(;].*)?$")


def base_name(version: tuple[int, int]) -> str:
    return f"python{version[0]}-{version[1]}"


def check_requirements(text: str) -> list[str]:
    """The requirement lines of a requirements.txt; BuildFailed if one reaches outside the package index
    (index or find-links options, other files, editable or local paths, direct URLs)."""
    lines = []
    for number, raw in enumerate(text.replace("\\\n", " ").splitlines(), 1):
        line = "" if raw.lstrip().startswith("#") else raw.split(" #", 1)[0].strip()
        if not line:
            continue
        requirement, *options = re.split(r"\s+(?=-)", line) if not line.startswith("-") else ("", line)
        for option in options:
            if not option.startswith(_ALLOWED_OPTIONS):
                raise BuildFailed(f"requirements.txt line {number}: option {option.split()[0]!r} is not allowed")
        if requirement and ("://" in requirement or "@" in requirement or not _REQUIREMENT.match(requirement)):
            raise BuildFailed(
                f"requirements.txt line {number}: {requirement!r} is not a package from the index (name, version)"
            )
        lines.append(line)
    return lines


class LocalEnvironmentBuilder:
    """Builds environments under ``root`` (e.g. DATA_DIR/environments); see the module docstring."""

    def __init__(
        self,
        root: Path,
        *,
        timeout: float = 1800.0,
        interpreters: Mapping[str, Path] | None = None,
        share_server_packages: bool = True,
        search_path: bool = True,
        serving_base: Sequence[str] = SERVING_BASE,
    ):
        self.root = Path(root)
        self.serving_base = tuple(serving_base)
        self.timeout = timeout
        self.share_server_packages = share_server_packages
        self._explicit = {k: Path(v) for k, v in (interpreters or {}).items()}
        self._search_path = search_path
        self._bases: dict[str, Path] | None = None
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}

    # ------------------------------------------------------------------ base environments

    def base_environments(self) -> dict[str, Path]:
        with self._lock:
            if self._bases is None:
                self._bases = self._discover()
            return dict(self._bases)

    def _discover(self) -> dict[str, Path]:
        found: dict[str, Path] = {base_name(sys.version_info[:2]): Path(sys.executable)}
        if self._search_path:
            for name, path in _interpreters_on_path(os.environ.get("PATH", "")).items():
                found.setdefault(name, path)
        for name, path in self._explicit.items():
            if not _NAME.match(name):
                raise ValueError(f"base environment names look like python3-11, not {name!r}")
            found[name] = path
        return dict(sorted(found.items(), key=lambda item: int(_NAME.match(item[0]).group(1))))

    # ------------------------------------------------------------------ building

    def build(self, key: str, base: str, requirements: str | None, log: Callable[[str], None]) -> Environment:
        if not _KEY.match(key):
            raise ValueError(f"environment key {key!r}: letters, digits, '.', '_' and '-' only")
        bases = self.base_environments()
        if base not in bases:
            raise BuildFailed(f"base environment {base!r} is not available here (have: {', '.join(bases)})")
        interpreter = bases[base]
        lines = check_requirements(requirements or "")
        if not lines:
            serving_base = ", ".join(self.serving_base)
            if not self.serving_base:
                log(f"no requirements: the environment is the base interpreter {interpreter}")
                return Environment(key=key, python=interpreter, base=base)
            if interpreter == Path(sys.executable) and has_installed(self.serving_base):
                log(f"no requirements: the base interpreter {interpreter}, which has the serving base ({serving_base})")
                return Environment(key=key, python=interpreter, base=base)
            log(f"no requirements: the base serving environment, {base} with {serving_base}")
            lines = list(self.serving_base)
        digest = hashlib.sha256((base + "\n" + "\n".join(lines)).encode()).hexdigest()
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        target = self.root / key
        with key_lock:
            self.root.mkdir(parents=True, exist_ok=True)
            with open(self.root / f".{key}.lock", "w") as lock_file:
                fcntl.flock(lock_file, fcntl.LOCK_EX)  # another server process may build the same key
                built = self._built(target, digest)
                if built is not None:
                    log(f"environment {key} is already built")
                    return Environment(key=key, python=built, base=base)
                return self._build(key, base, interpreter, lines, digest, target, log)

    def _built(self, target: Path, digest: str) -> Path | None:
        try:
            marker = json.loads((target / MARKER).read_text())
        except (OSError, ValueError):
            return None
        python = Path(marker.get("python", ""))
        if marker.get("digest") != digest or not python.exists():
            return None
        return python

    def _build(
        self,
        key: str,
        base: str,
        interpreter: Path,
        lines: list[str],
        digest: str,
        target: Path,
        log: Callable[[str], None],
    ) -> Environment:
        tail: deque[str] = deque(maxlen=TAIL_LINES)

        def emit(line: str) -> None:
            tail.append(line)
            log(line)

        if target.exists():
            emit(f"removing the incomplete or outdated environment {target}")
            shutil.rmtree(target)
        deadline = time.monotonic() + self.timeout
        base_python = _base_interpreter(interpreter)
        emit(f"creating a virtual environment from {base_python}")
        self._run([str(base_python), "-m", "venv", "--without-pip", str(target)], deadline, emit, tail)
        python = target / "bin" / "python"
        if not python.exists():
            raise BuildFailed(_with_tail(f"the virtual environment has no interpreter at {python}", tail))
        if self.share_server_packages and _version_of(python) == sys.version_info[:2]:
            site_dir = _site_packages(python)
            shared = [p for p in _server_site_packages() if Path(p).resolve() != site_dir.resolve()]
            # addsitedir (not a bare path) so .pth files there (editable installs) work too; appended after ours
            pth = "".join(f"import site; site.addsitedir({p!r})\n" for p in shared)
            (site_dir / "_modelharbor_server_packages.pth").write_text(pth)
            (site_dir / "_modelharbor_server_packages.pth").chmod(0o644)
            emit(f"sharing the server's packages ({', '.join(shared)}) after the environment's own")
        (target / "requirements.txt").write_text("\n".join(lines) + "\n")
        command = [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-input",
            "--disable-pip-version-check",
            "--no-warn-script-location",
            "--only-binary=:all:",
            "-r",
            str(target / "requirements.txt"),
        ]
        emit("pip install -r requirements.txt")
        self._run(command, deadline, emit, tail)
        (target / MARKER).write_text(
            json.dumps({"key": key, "base": base, "python": str(python), "digest": digest, "built_at": time.time()})
        )
        emit(f"environment {key} is ready")
        return Environment(key=key, python=python, base=base)

    def _run(self, command: list[str], deadline: float, emit: Callable[[str], None], tail: deque[str]) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELHARBOR_")}
        env["PYTHONUNBUFFERED"] = "1"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BuildFailed(_with_tail(f"the build timed out after {self.timeout:g} s", tail))
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            umask=0o022,  # readable by the sandboxed workloads that run in it (the data directory stays private)
        )
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(remaining, kill)
        timer.daemon = True
        timer.start()
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                emit(raw.decode("utf-8", "replace").rstrip())
            code = proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                kill()
                proc.wait()
        if timed_out.is_set():
            raise BuildFailed(_with_tail(f"the build timed out after {self.timeout:g} s", tail))
        if code != 0:
            raise BuildFailed(
                _with_tail(f"{Path(command[0]).name} {' '.join(command[1:3])} failed (exit {code})", tail)
            )


def has_installed(pins: Sequence[str]) -> bool:
    """Whether this interpreter has every ``name==version`` of ``pins`` installed at exactly that version."""
    for pin in pins:
        name, sep, version = pin.partition("==")
        if not sep:
            return False
        try:
            if metadata.version(name.strip()) != version.strip():
                return False
        except metadata.PackageNotFoundError:
            return False
    return True


def _with_tail(message: str, tail: deque[str]) -> str:
    return message + ("\n\nBuild log tail:\n" + "\n".join(tail) if tail else "")


@functools.lru_cache(maxsize=4)
def _interpreters_on_path(path: str) -> dict[str, Path]:
    """``python3.N`` on PATH that run and are that version (looked for once per process and PATH)."""
    found = {}
    for minor in range(8, 30):
        exe = shutil.which(f"python3.{minor}", path=path)
        real = _probe(exe, (3, minor)) if exe else None
        if real is not None:
            found[base_name((3, minor))] = real
    return found


def _probe(exe: str, version: tuple[int, int]) -> Path | None:
    """The real interpreter behind ``exe`` if it runs and is ``version`` (pyenv shims may not)."""
    try:
        out = subprocess.run(
            [exe, "-c", "import sys; print(sys.version_info[0], sys.version_info[1]); print(sys.executable)"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    parts = out.stdout.split("\n")
    if out.returncode != 0 or len(parts) < 2 or parts[0].split() != [str(version[0]), str(version[1])]:
        return None
    return Path(parts[1].strip() or exe)


def _version_of(python: Path) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [str(python), "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True, text=True, timeout=30
        )
        major, minor = out.stdout.split()
        return int(major), int(minor)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None


def _base_interpreter(python: Path) -> Path:
    """The installation a venv interpreter belongs to (a venv made from a venv must not nest in it)."""
    if Path(python) == Path(sys.executable):
        base = getattr(sys, "_base_executable", None) or sys.executable
        return Path(base)
    cfg = Path(python).parent.parent / "pyvenv.cfg"
    if cfg.exists():
        values = dict(
            (k.strip(), v.strip()) for k, _, v in (line.partition("=") for line in cfg.read_text().splitlines())
        )
        if values.get("executable"):
            return Path(values["executable"])
        if values.get("home"):
            name = Path(python).name
            for candidate in (name, f"python{'.'.join(values.get('version', '').split('.')[:2])}", "python3"):
                exe = Path(values["home"]) / candidate
                if exe.exists():
                    return exe
    return Path(python)


def _site_packages(python: Path) -> Path:
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    path = Path(out.stdout.strip())
    path.mkdir(parents=True, exist_ok=True)
    return path


def _server_site_packages() -> list[str]:
    """Where the server's packages live: its site-packages and any .pth-added paths (editable installs)."""
    paths = []
    for p in [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()]:
        if p not in paths and os.path.isdir(p):
            paths.append(p)
    return paths
