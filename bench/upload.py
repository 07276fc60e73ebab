"""Upload/download throughput and memory of ModelHarbor next to a bare Starlette sink, in one run.

    .venv/bin/python bench/upload.py [--size-mib 1024] [--chunk-mib 64] [--parallel 4] [--big-gib 0]

Starts bench/raw_sink.py and ``modelharbor serve`` (fresh data dir) as subprocesses on free loopback ports,
streams a test file from disk to both (whole-file PUT and parallel chunks to the sink, a chunked session to
ModelHarbor), downloads it back from both, samples each server's VmRSS every 50 ms, and prints a table and
the ratios against the performance targets. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import math
import os
import re
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
PIECE = MiB  # the client streams bodies in pieces of this size
SAMPLE_INTERVAL = 0.05
ADMIN_KEY = "mh_bench_admin_key_0123456789abcdef"
HERE = Path(__file__).resolve().parent
TIMEOUT = httpx.Timeout(600.0, connect=10.0)

TARGET_UPLOAD = 0.8
TARGET_DOWNLOAD = 0.9
TARGET_BIG_RSS_MIB = 200
TARGET_IDLE_RSS_MIB = 150


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- server processes ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server subprocess in its own session (Ctrl-C reaches only us; we stop it), logging to a file."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], cwd: Path, log_path: Path, port: int):
        self.name = name
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.data_dir: Path | None = None
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_healthy(self, timeout: float = 90.0) -> float:
        t0 = time.perf_counter()
        deadline = t0 + timeout
        with httpx.Client(timeout=2.0) as c:
            while time.perf_counter() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if c.get(f"{self.base}/healthz").status_code == 200:
                        return time.perf_counter() - t0
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not become healthy in {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, n: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


# --- memory sampling -------------------------------------------------------------------------


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/children") as f:
                for child in f.read().split():
                    out.append(int(child))
                    out.extend(_descendants(int(child)))
    return out


def _status_kib(pid: int, field_name: str) -> int:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


def rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` plus any child processes (ModelHarbor serves from a single process today)."""
    return sum(_status_kib(p, "VmRSS") for p in [pid, *_descendants(pid)])


def children_cpu_seconds() -> float:
    """User plus system CPU time of the child processes waited for so far (a subprocess.run's, once it returned)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def reset_hwm(pid: int) -> bool:
    """Reset VmHWM (the kernel's own peak RSS) via clear_refs; allowed for processes we own."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (all its threads) so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Monitor:
    """During a block: a server's VmRSS sampled every 50 ms in a thread (and its VmHWM, reset first, which also
    catches spikes between samples), the server's CPU seconds, and this client process's CPU seconds."""

    def __init__(self, pid: int | None):
        self.pid = pid
        self.peak_kib = 0
        self.hwm_kib: int | None = None
        self.server_cpu: float | None = None
        self.client_cpu = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._hwm_ok = False

    def _sample(self) -> None:
        if self.pid is not None:
            self.peak_kib = max(self.peak_kib, rss_kib(self.pid))

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL):
            self._sample()

    def __enter__(self) -> Monitor:
        if self.pid is not None:
            self._hwm_ok = reset_hwm(self.pid)
            self._cpu0 = cpu_seconds(self.pid)
            self._sample()
            self._thread.start()
        self._ccpu0 = time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.client_cpu = time.process_time() - self._ccpu0
        if self.pid is not None:
            self.server_cpu = cpu_seconds(self.pid) - self._cpu0
            self._stop.set()
            self._thread.join()
            self._sample()
            if self._hwm_ok:
                self.hwm_kib = _status_kib(self.pid, "VmHWM")

    def phase(self, name: str, seconds: float, nbytes: int, server: str = "", notes: str = "") -> Phase:
        return Phase(
            name,
            seconds,
            nbytes,
            server,
            self.peak_kib / KiB if self.pid is not None else None,
            None if self.hwm_kib is None else self.hwm_kib / KiB,
            notes,
            server_cpu=self.server_cpu,
            client_cpu=self.client_cpu,
        )


# --- profiling (optional) --------------------------------------------------------------------


class PySpy:
    """``py-spy record --format raw`` on a pid during a block; writes collapsed stacks to ``out``."""

    def __init__(self, exe: str | None, pid: int, out: Path | None, native: bool = False):
        self.exe, self.pid, self.out, self.native = exe, pid, out, native
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> PySpy:
        if self.exe and self.out:
            cmd = [self.exe, "record", "--pid", str(self.pid), "--format", "raw", "-o", str(self.out)]
            # --native needs py-spy to pause the process for each sample (--nonblocking would refuse it)
            cmd += ["--rate", "100", "--threads"] + (["--native"] if self.native else ["--nonblocking"])
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)  # let it attach
        return self

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# frames every stack of the server passes through: left out of the inclusive ranking
_BORING = (
    "typer/",
    "click/",
    "asyncio/runners.py",
    "asyncio/base_events.py",
    "uvicorn/main.py",
    "uvicorn/server.py",
    "uvicorn/_compat.py",
    "modelharbor/cli.py",
    "<module>",
    "threading.py",
    "anyio/_backends/_asyncio.py",
    "concurrent/futures/thread.py",
)


def summarize_profile(path: Path, top: int = 15) -> str:
    """Top functions by self and by inclusive samples from py-spy's collapsed-stack output."""
    if not path.exists():
        return f"  (no profile written to {path})"
    self_c: Counter[str] = Counter()
    incl_c: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        frames = [f for f in stack.split(";") if not f.startswith("thread (") and not f.startswith("process ")]
        if not frames:
            continue
        total += count
        self_c[frames[-1]] += count
        for f in set(frames):
            if not any(b in f for b in _BORING):
                incl_c[f] += count
    if not total:
        return f"  (empty profile {path})"
    lines = [f"  {total} samples (non-idle), {path}", "  self%  function"]
    lines += [f"  {100 * c / total:5.1f}  {f}" for f, c in self_c.most_common(top)]
    lines += ["  incl%  function"]
    lines += [f"  {100 * c / total:5.1f}  {f}" for f, c in incl_c.most_common(top)]
    return "\n".join(lines)


# --- client ------------------------------------------------------------------------------------


def file_pieces(path: Path, offset: int, length: int) -> Iterator[bytes]:
    with open(path, "rb", buffering=0) as f:
        f.seek(offset)
        left = length
        while left:
            piece = f.read(min(PIECE, left))
            if not piece:
                raise EOFError(f"{path} ended early")
            left -= len(piece)
            yield piece


class ClientPool:
    """One httpx.Client per thread (keep-alive connections, no sharing across threads)."""

    def __init__(self):
        self._local = threading.local()
        self._all: list[httpx.Client] = []
        self._lock = threading.Lock()

    def get(self) -> httpx.Client:
        c = getattr(self._local, "client", None)
        if c is None:
            c = httpx.Client(timeout=TIMEOUT)
            self._local.client = c
            with self._lock:
                self._all.append(c)
        return c

    def close(self) -> None:
        for c in self._all:
            c.close()


def put_stream(pool: ClientPool, url: str, body: Iterator[bytes], length: int, headers: dict | None = None) -> dict:
    h = {"content-length": str(length), "content-type": "application/octet-stream", **(headers or {})}
    r = pool.get().put(url, content=body, headers=h)
    if r.status_code >= 300:
        raise RuntimeError(f"PUT {url} -> {r.status_code}: {r.text[:500]}")
    return r.json()


def run_parallel(tasks: list[Callable[[], object]], parallel: int) -> list[object]:
    with ThreadPoolExecutor(max_workers=parallel) as ex:
        futures = [ex.submit(t) for t in tasks]
        return [f.result() for f in futures]


def download(pool: ClientPool, url: str, headers: dict | None = None) -> tuple[int, int]:
    """GET the whole body, discarding it; returns (bytes read, Content-Length)."""
    n = 0
    with pool.get().stream("GET", url, headers=headers or {}) as r:
        if r.status_code != 200:
            r.read()
            raise RuntimeError(f"GET {url} -> {r.status_code}: {r.text[:500]}")
        for piece in r.iter_raw():
            n += len(piece)
        return n, int(r.headers.get("content-length", -1))


def chunk_spans(size: int, chunk: int) -> list[tuple[int, int]]:
    n = max(1, math.ceil(size / chunk))
    return [(i * chunk, min(chunk, size - i * chunk)) for i in range(n)]


def make_test_file(path: Path, size: int) -> str:
    """Random-ish incompressible bytes: a 16 MiB random pool, each MiB stamped with its index. Returns sha256."""
    pool = os.urandom(16 * MiB)
    h = hashlib.sha256()
    with open(path, "wb") as f:
        for i, off in enumerate(range(0, size, MiB)):
            n = min(MiB, size - off)
            start = (i * 7919 * 4096) % (15 * MiB)
            piece = (struct.pack("<Q", i) + pool[start : start + MiB])[:n]
            f.write(piece)
            h.update(piece)
        f.flush()
        os.fsync(f.fileno())
    return h.hexdigest()


def warm(path: Path) -> None:
    """Read the file once so every upload phase starts with it in the page cache."""
    for _ in file_pieces(path, 0, path.stat().st_size):
        pass


def settle(*paths: Path) -> None:
    """Start a timed phase from the same state: no dirty pages (``os.sync``), the page cache dropped when we run as
    root, then ``paths`` read back in. Without the drop, the phase that writes while the cache is full pays for
    reclaiming it: the same 1 GiB upload measured 271 or 564 MiB/s, and the raw sink 600 or 271, by whose turn it
    was (system time 3.3 s against 1.2; 2026-12-08)."""
    os.sync()
    if os.geteuid() == 0:
        with contextlib.suppress(OSError), open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    for path in paths:
        warm(path)


class Generated:
    """Deterministic generated content for the --big-gib upload: streamed, never stored on the client."""

    def __init__(self, size: int, chunk: int):
        self.size, self.chunk = size, chunk
        self.pool = os.urandom(8 * MiB + PIECE)

    def pieces(self, offset: int, length: int) -> Iterator[bytes]:
        pos, end = offset, offset + length
        while pos < end:
            n = min(PIECE, end - pos, PIECE - pos % PIECE)
            idx = pos // PIECE
            start = (idx * 104729) % (8 * MiB)
            block = struct.pack("<Q", idx) + self.pool[start + 8 : start + PIECE]
            within = pos % PIECE
            yield block[within : within + n]
            pos += n

    def sha256(self) -> str:
        h = hashlib.sha256()
        for piece in self.pieces(0, self.size):
            h.update(piece)
        return h.hexdigest()


# --- results -----------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    seconds: float
    nbytes: int
    server: str = ""  # "raw" / "mh" / ""
    peak_mib: float | None = None
    hwm_mib: float | None = None
    notes: str = ""
    all_mibs: list[float] = field(default_factory=list)
    server_cpu: float | None = None  # CPU seconds of the server process during the phase
    client_cpu: float | None = None  # CPU seconds of this client process during the phase

    @property
    def mibs(self) -> float:
        return self.nbytes / MiB / self.seconds if self.seconds > 0 else float("inf")


@dataclass
class Results:
    runs: dict[str, list[Phase]] = field(default_factory=dict)
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    idle: dict[str, float] = field(default_factory=dict)
    dd: dict[str, float | None] = field(default_factory=dict)
    load: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    profiles: dict[str, Path] = field(default_factory=dict)

    @property
    def phases(self) -> dict[str, Phase]:
        """Per phase: the run with the median time (of --rounds), with the highest RSS seen in any run."""
        out = {}
        for name, runs in self.runs.items():
            mid = sorted(runs, key=lambda p: p.seconds)[(len(runs) - 1) // 2]
            peaks = [p.peak_mib for p in runs if p.peak_mib is not None]
            hwms = [p.hwm_mib for p in runs if p.hwm_mib is not None]
            out[name] = Phase(
                name,
                mid.seconds,
                mid.nbytes,
                mid.server,
                max(peaks) if peaks else None,
                max(hwms) if hwms else None,
                mid.notes,
                [p.mibs for p in runs],
                mid.server_cpu,
                mid.client_cpu,
            )
        return out

    def add(self, p: Phase) -> Phase:
        self.runs.setdefault(p.name, []).append(p)
        rss = f", server peak RSS {p.peak_mib:.0f} MiB" if p.peak_mib is not None else ""
        log(f"  {p.name}: {p.seconds:.2f} s, {p.mibs:.0f} MiB/s{rss}{' — ' + p.notes if p.notes else ''}")
        return p

    def check(self, what: str, ok: bool, detail: str) -> None:
        self.checks.append((what, ok, detail))
        log(f"  check {what}: {'OK' if ok else 'FAILED'} ({detail})")


def measure_dd(workdir: Path) -> float | None:
    """Durable sequential write speed: dd if=/dev/zero bs=8M count=128 conv=fsync, in MiB/s."""
    target = workdir / "ddtest"
    try:
        out = subprocess.run(
            ["dd", "if=/dev/zero", f"of={target}", "bs=8M", "count=128", "conv=fsync"],
            capture_output=True,
            text=True,
            env={**os.environ, "LC_ALL": "C"},
            timeout=600,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log(f"  dd failed: {exc}")
        return None
    finally:
        with contextlib.suppress(OSError):
            target.unlink()
    m = re.search(r"^(\d+) bytes .*copied, ([\d.]+) s", out.stderr, re.M)
    if not m:
        log(f"  could not parse dd output: {out.stderr.strip()!r}")
        return None
    return int(m.group(1)) / MiB / float(m.group(2))


# --- the run -----------------------------------------------------------------------------------


def server_env(data_dir: Path, extra: list[str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELHARBOR_")}
    env.update(
        MODELHARBOR_DATA_DIR=str(data_dir),
        MODELHARBOR_ADMIN_USER="admin",
        MODELHARBOR_ADMIN_KEY=ADMIN_KEY,
        MODELHARBOR_SECRET_KEY="bench-secret-key-not-for-production",
        MODELHARBOR_LOG_LEVEL="warning",
    )
    env.update(kv.split("=", 1) for kv in extra)
    return env


def modelharbor_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "modelharbor"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "modelharbor"]


def start_pair(
    workdir: Path, raw_dir: Path, mh_dir: Path, extra_env: list[str], servers: list[Server]
) -> tuple[Server, Server]:
    """The raw sink and ``modelharbor serve`` on free ports (appended to ``servers`` as they start, to be stopped)."""
    port = free_port()
    raw = Server(
        "raw sink",
        [sys.executable, str(HERE / "raw_sink.py"), "--dir", str(raw_dir), "--port", str(port)],
        os.environ.copy(),
        workdir,
        workdir / "raw-sink.log",
        port,
    )
    raw.data_dir = raw_dir
    servers.append(raw)
    port = free_port()
    mh = Server(
        "ModelHarbor",
        [*modelharbor_cmd(), "serve", "--host", "127.0.0.1", "--port", str(port)],
        server_env(mh_dir, extra_env),
        workdir,  # no stray .env from the repo
        workdir / "modelharbor.log",
        port,
    )
    servers.append(mh)
    return raw, mh


def idle_rss_mib(pid: int, settle: float = 2.0) -> float:
    time.sleep(settle)
    samples = []
    for _ in range(10):
        samples.append(rss_kib(pid))
        time.sleep(SAMPLE_INTERVAL)
    return min(samples) / KiB


@contextlib.contextmanager
def shielded():
    """Ignore SIGINT/SIGTERM inside the block (cleanup), restoring the handlers after."""
    saved = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def run(args: argparse.Namespace, workdir: Path, res: Results) -> None:
    size = args.size_mib * MiB
    chunk = args.chunk_mib * MiB
    spans = chunk_spans(size, chunk)
    auth = {"authorization": f"Bearer {ADMIN_KEY}"}
    pyspy_exe = None
    if args.py_spy:
        pyspy_exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(pyspy_exe).exists():
            raise SystemExit("--py-spy: py-spy not found (.venv/bin/pip install py-spy)")
        args.py_spy.mkdir(parents=True, exist_ok=True)

    # 1. the test file (not timed) and the disk's own speed
    test_file = workdir / "testfile.bin"
    log(f"creating {args.size_mib} MiB test file in {workdir} …")
    res.load["start"] = os.getloadavg()
    expected_sha = make_test_file(test_file, size)
    os.sync()
    res.dd["start"] = measure_dd(workdir)
    log(f"  dd durable write: {res.dd['start'] or 0:.0f} MiB/s")

    # 2. servers
    raw_dir = workdir / "raw-sink"
    mh_dir = workdir / "mh-data"
    servers: list[Server] = []
    try:
        raw, mh = start_pair(workdir, raw_dir, mh_dir, args.server_env, servers)
        log(f"raw sink pid {raw.pid} on {raw.base}; ModelHarbor pid {mh.pid} on {mh.base}")
        raw.wait_healthy()
        t_mh = mh.wait_healthy()
        log(f"  ModelHarbor healthy after {t_mh:.1f} s")
        res.idle["after startup"] = idle_rss_mib(mh.pid)
        log(f"  ModelHarbor idle RSS after startup: {res.idle['after startup']:.0f} MiB")
        pool = ClientPool()
        try:
            _phases(args, res, pool, raw, mh, test_file, expected_sha, size, spans, auth, pyspy_exe)
            res.idle["after run"] = idle_rss_mib(mh.pid)
            log(f"  ModelHarbor idle RSS after the run: {res.idle['after run']:.0f} MiB")
            if args.big_gib > 0:
                _big(args, res, pool, mh, workdir, auth, pyspy_exe)
                res.idle["after big"] = idle_rss_mib(mh.pid)
                log(f"  ModelHarbor idle RSS after the big upload: {res.idle['after big']:.0f} MiB")
        finally:
            pool.close()
    finally:
        with shielded():  # a second Ctrl-C must not leave servers behind
            for s in reversed(servers):
                s.stop()
    res.load["end"] = os.getloadavg()
    os.sync()
    res.dd["end"] = measure_dd(workdir)


def _phases(args, res: Results, pool, raw: Server, mh: Server, test_file: Path, expected_sha, size, spans, auth, spy):
    par = args.parallel

    def prepare():
        warm(test_file)
        os.sync()  # no dirty pages left from an earlier phase

    # client ceilings
    prepare()
    with Monitor(None) as rs:
        t0 = time.perf_counter()
        warm(test_file)
        dt = time.perf_counter() - t0
    res.add(rs.phase("client: read file, 1 MiB pieces", dt, size, notes="no HTTP; client ceiling"))
    prepare()
    with Monitor(None) as rs:
        t0 = time.perf_counter()
        run_parallel([lambda o=o, n=n: sum(map(len, file_pieces(test_file, o, n))) for o, n in spans], par)
        dt = time.perf_counter() - t0
    res.add(rs.phase(f"client: read {len(spans)} chunks, {par} threads", dt, size, notes="no HTTP"))

    for k in range(args.rounds):
        if args.rounds > 1:
            log(f"round {k + 1} of {args.rounds}")
        profile = spy if k == 0 else None
        _round(args, res, pool, raw, mh, test_file, expected_sha, size, spans, auth, profile, prepare, k)


def _round(args, res: Results, pool, raw, mh, test_file, expected_sha, size, spans, auth, spy, prepare, k: int):
    par = args.parallel
    whole, chunked = f"whole{k}", f"chunked{k}"

    # (i) raw sink, one stream
    prepare()
    with Monitor(raw.pid) as rs:
        t0 = time.perf_counter()
        out = put_stream(pool, f"{raw.base}/sink/{whole}", file_pieces(test_file, 0, size), size)
        dt = time.perf_counter() - t0
    res.add(rs.phase("upload raw sink, single PUT", dt, size, "raw"))
    res.check("raw single upload size", out["size"] == size, f"{out['size']} of {size}")

    # (ii) raw sink, chunks
    prepare()
    with Monitor(raw.pid) as rs:
        t0 = time.perf_counter()
        outs = run_parallel(
            [
                lambda i=i, o=o, n=n: put_stream(
                    pool, f"{raw.base}/sink/{chunked}/{i}", file_pieces(test_file, o, n), n
                )
                for i, (o, n) in enumerate(spans)
            ],
            par,
        )
        dt = time.perf_counter() - t0
    label = f"upload raw sink, {len(spans)} chunks × {args.chunk_mib} MiB, {par} parallel"
    res.add(rs.phase(label, dt, size, "raw"))
    got = sum(o["size"] for o in outs)  # type: ignore[index]
    res.check("raw chunked upload size", got == size, f"{got} of {size}")
    shutil.rmtree(raw.data_dir / f"{chunked}.chunks", ignore_errors=True)  # spare the disk

    # (iii) ModelHarbor chunked session
    prepare()
    prof = args.py_spy / "mh-upload.txt" if spy else None
    with PySpy(spy, mh.pid, prof, args.py_spy_native), Monitor(mh.pid) as rs:
        c = pool.get()
        t0 = time.perf_counter()
        r = c.post(
            f"{mh.base}/api/v1/uploads",
            json={"name": "bench.bin", "total_chunks": len(spans), "size": size},
            headers=auth,
        )
        if r.status_code != 201:
            raise RuntimeError(f"start upload -> {r.status_code}: {r.text[:500]}")
        upload_id = r.json()["id"]
        t1 = time.perf_counter()
        run_parallel(
            [
                lambda i=i, o=o, n=n: put_stream(
                    pool, f"{mh.base}/api/v1/uploads/{upload_id}/chunks/{i}", file_pieces(test_file, o, n), n, auth
                )
                for i, (o, n) in enumerate(spans)
            ],
            par,
        )
        t2 = time.perf_counter()
        r = c.post(f"{mh.base}/api/v1/uploads/{upload_id}/complete", headers=auth)
        t3 = time.perf_counter()
        if r.status_code != 200:
            raise RuntimeError(f"complete -> {r.status_code}: {r.text[:500]}")
    if prof:
        res.profiles["ModelHarbor upload"] = prof
    file_info = r.json()["file"]
    notes = f"start {t1 - t0:.2f} s + chunks {t2 - t1:.2f} s ({size / MiB / (t2 - t1):.0f} MiB/s) + complete {t3 - t2:.2f} s"
    label = f"upload ModelHarbor, {len(spans)} chunks × {args.chunk_mib} MiB, {par} parallel"
    res.add(rs.phase(label, t3 - t0, size, "mh", notes))
    res.check("ModelHarbor sha256", file_info["sha256"] == expected_sha, f"{file_info['sha256'][:16]}… vs local")
    res.check("ModelHarbor size", file_info["size"] == size, f"{file_info['size']} of {size}")

    # downloads: the files were just written, so both are served from the page cache
    os.sync()
    with Monitor(raw.pid) as rs:
        t0 = time.perf_counter()
        n, cl = download(pool, f"{raw.base}/sink/{whole}")
        dt = time.perf_counter() - t0
    label = "download raw sink (FileResponse, 64 KiB reads)"
    res.add(rs.phase(label, dt, n, "raw"))
    res.check("raw download bytes", n == size == cl, f"{n} read, Content-Length {cl}, expected {size}")

    with Monitor(raw.pid) as rs:
        t0 = time.perf_counter()
        n, cl = download(pool, f"{raw.base}/sink/{whole}?chunk={MiB}")
        dt = time.perf_counter() - t0
    label = "download raw sink (FileResponse, 1 MiB reads)"
    res.add(rs.phase(label, dt, n, "raw"))
    res.check("raw download (1 MiB) bytes", n == size == cl, f"{n} read, Content-Length {cl}")

    prof = args.py_spy / "mh-download.txt" if spy else None
    with PySpy(spy, mh.pid, prof, args.py_spy_native), Monitor(mh.pid) as rs:
        t0 = time.perf_counter()
        n, cl = download(pool, f"{mh.base}/api/v1/files/{file_info['id']}/content", auth)
        dt = time.perf_counter() - t0
    if prof:
        res.profiles["ModelHarbor download"] = prof
    res.add(rs.phase("download ModelHarbor", dt, n, "mh"))
    res.check("ModelHarbor download bytes", n == size == cl, f"{n} read, Content-Length {cl}, expected {size}")

    # not timed: drop this round's copies so the next round writes fresh files (and no dedup kicks in)
    (raw.data_dir / whole).unlink(missing_ok=True)
    r = pool.get().delete(f"{mh.base}/api/v1/files/{file_info['id']}", headers=auth)
    res.check("ModelHarbor file deleted", r.status_code == 204, f"DELETE -> {r.status_code}")


def _big(args, res: Results, pool: ClientPool, mh: Server, workdir: Path, auth: dict, spy) -> None:
    size = args.big_gib * GiB
    chunk = args.chunk_mib * MiB
    spans = chunk_spans(size, chunk)
    free = shutil.disk_usage(workdir).free
    if free < size + GiB:
        res.check("big upload disk space", False, f"{free / GiB:.1f} GiB free, need {size / GiB + 1:.1f} GiB")
        return
    gen = Generated(size, chunk)
    log(f"big upload: {args.big_gib} GiB generated on the fly, {len(spans)} chunks × {args.chunk_mib} MiB …")
    os.sync()
    prof = args.py_spy / "mh-big-upload.txt" if args.py_spy else None
    with PySpy(spy, mh.pid, prof, args.py_spy_native), Monitor(mh.pid) as rs:
        c = pool.get()
        t0 = time.perf_counter()
        r = c.post(
            f"{mh.base}/api/v1/uploads",
            json={"name": "big.bin", "total_chunks": len(spans), "size": size},
            headers=auth,
        )
        if r.status_code != 201:
            raise RuntimeError(f"start upload -> {r.status_code}: {r.text[:500]}")
        upload_id = r.json()["id"]
        t1 = time.perf_counter()
        run_parallel(
            [
                lambda i=i, o=o, n=n: put_stream(
                    pool, f"{mh.base}/api/v1/uploads/{upload_id}/chunks/{i}", gen.pieces(o, n), n, auth
                )
                for i, (o, n) in enumerate(spans)
            ],
            args.parallel,
        )
        t2 = time.perf_counter()
        r = c.post(f"{mh.base}/api/v1/uploads/{upload_id}/complete", headers=auth)
        t3 = time.perf_counter()
        if r.status_code != 200:
            raise RuntimeError(f"complete -> {r.status_code}: {r.text[:500]}")
    if prof:
        res.profiles["ModelHarbor big upload"] = prof
    info = r.json()["file"]
    notes = f"chunks {t2 - t1:.1f} s + complete {t3 - t2:.1f} s; generated, not read from disk"
    label = f"upload ModelHarbor {args.big_gib} GiB, {len(spans)} × {args.chunk_mib} MiB, {args.parallel} parallel"
    res.add(rs.phase(label, t3 - t0, size, "mh-big", notes))
    res.check("big upload size", info["size"] == size, f"{info['size']} of {size}")
    log("  hashing the generated content locally (not timed) …")
    res.check("big upload sha256", info["sha256"] == gen.sha256(), f"{info['sha256'][:16]}… vs generated")
    r = pool.get().delete(f"{mh.base}/api/v1/files/{info['id']}", headers=auth)
    res.check("big file deleted", r.status_code == 204, f"DELETE -> {r.status_code}")


# --- report ------------------------------------------------------------------------------------


def _fmt_mib(v: float | None) -> str:
    return "—" if v is None else f"{v:.0f}"


def report(args: argparse.Namespace, res: Results) -> str:
    out: list[str] = []
    phases = res.phases
    multi = any(len(p.all_mibs) > 1 for p in phases.values())
    head = ("phase", "seconds", "MiB/s", "peak RSS MiB", "VmHWM MiB", "server CPU s", "client CPU s")
    rows = [head + (("MiB/s of each round",) if multi else ())]
    for p in phases.values():
        row = (p.name, f"{p.seconds:.2f}", f"{p.mibs:.0f}", _fmt_mib(p.peak_mib), _fmt_mib(p.hwm_mib))
        row += ("—" if p.server_cpu is None else f"{p.server_cpu:.2f}", f"{p.client_cpu or 0:.2f}")
        if multi:
            row += (" ".join(f"{v:.0f}" for v in p.all_mibs),)
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for j, r in enumerate(rows):
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
        out.append("  ".join(cells).rstrip())
        if j == 0:
            out.append("  ".join("-" * w for w in widths))
    notes = [p for p in phases.values() if p.notes]
    if notes:
        out.append("")
        out += [f"{p.name}: {p.notes}" for p in notes]
    out.append("peak RSS: max of VmRSS sampled every 50 ms; VmHWM: the kernel's peak (reset before each phase).")
    out.append(
        "CPU s: user+system CPU seconds of the server process / of this client during the phase (2 cores total)."
    )
    if multi:
        out.append(f"{args.rounds} rounds: seconds and MiB/s are the median round; RSS the highest of any round.")

    def find(pred) -> Phase | None:
        return next((p for p in phases.values() if pred(p)), None)

    up_mh = find(lambda p: p.server == "mh" and p.name.startswith("upload"))
    up_raw1 = find(lambda p: p.name.startswith("upload raw sink, single"))
    up_rawc = find(lambda p: p.name.startswith("upload raw sink,") and "chunks" in p.name)
    dl_raw = find(lambda p: p.name.startswith("download raw sink (FileResponse, 64"))
    dl_raw1m = find(lambda p: p.name.startswith("download raw sink (FileResponse, 1 MiB"))
    dl_mh = find(lambda p: p.name == "download ModelHarbor")
    big = find(lambda p: p.server == "mh-big")

    def ratio_line(label: str, a: Phase | None, b: Phase | None, target: float) -> str:
        if not a or not b:
            return f"{label:<44} not measured"
        r = a.mibs / b.mibs
        verdict = "PASS" if r >= target else "MISS"
        return f"{label:<44} {r:5.2f}×   (target ≥ {target:.1f}×)  {verdict}"

    out += ["", "ratios (MiB/s over MiB/s)"]
    out.append(ratio_line("ModelHarbor upload / raw chunked upload", up_mh, up_rawc, TARGET_UPLOAD))
    out.append(ratio_line("ModelHarbor upload / raw single upload", up_mh, up_raw1, TARGET_UPLOAD))
    out.append(ratio_line("ModelHarbor download / raw download", dl_mh, dl_raw, TARGET_DOWNLOAD))
    if dl_mh and dl_raw1m:
        out.append(f"{'  (for information: / raw with 1 MiB reads)':<44} {dl_mh.mibs / dl_raw1m.mibs:5.2f}×")
    if big and big.peak_mib is not None:
        peak = max(big.peak_mib, big.hwm_mib or 0)
        verdict = "PASS" if peak < TARGET_BIG_RSS_MIB else "MISS"
        extra = "" if args.big_gib == 10 else f"  (target is stated for 10 GiB; this was {args.big_gib} GiB)"
        out.append(
            f"{'peak RSS during ' + str(args.big_gib) + ' GiB upload':<44} {peak:5.0f} MiB (target < "
            f"{TARGET_BIG_RSS_MIB} MiB)  {verdict}{extra}"
        )
    else:
        out.append(f"{'peak RSS during 10 GiB upload':<44} not run (use --big-gib 10)")
    for when, v in res.idle.items():
        verdict = "PASS" if v < TARGET_IDLE_RSS_MIB else "MISS"
        out.append(f"{'ModelHarbor idle RSS ' + when:<44} {v:5.0f} MiB (target < {TARGET_IDLE_RSS_MIB} MiB)  {verdict}")

    load = ", ".join(f"{a:.1f}/{b:.1f}/{c:.1f} ({k})" for k, (a, b, c) in res.load.items())
    out += ["", f"load average 1/5/15 min: {load} — other processes on the machine skew the numbers"]
    dd = ", ".join(f"{v:.0f} MiB/s ({k})" for k, v in res.dd.items() if v) or "not measured"
    out.append(f"disk durable sequential write (dd bs=8M count=128 conv=fsync): {dd}")
    out.append(
        "page cache: not dropped between phases (needs root); the test file is read once before every upload "
        "phase so all phases start with it cached, and os.sync() flushes dirty pages between phases."
    )
    if args.server_env:
        out.append(f"extra ModelHarbor environment: {' '.join(args.server_env)}")
    out += ["", "checks"]
    grouped: dict[str, list[tuple[bool, str]]] = {}
    for what, ok, detail in res.checks:
        grouped.setdefault(what, []).append((ok, detail))
    for what, items in grouped.items():
        bad = [d for ok, d in items if not ok]
        times = f" (×{len(items)})" if len(items) > 1 else ""
        out.append(f"  {'FAIL' if bad else 'OK  '} {what}{times}: {(bad or [items[-1][1]])[0]}")
    for name, path in res.profiles.items():
        out += ["", f"py-spy profile: {name}", summarize_profile(path)]
    return "\n".join(out)


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="ModelHarbor vs bare Starlette sink: upload/download MiB/s and RSS.")
    p.add_argument("--size-mib", type=int, default=1024, help="Test file size (default 1024).")
    p.add_argument("--chunk-mib", type=int, default=64, help="Chunk size of chunked uploads (default 64).")
    p.add_argument("--parallel", type=int, default=4, help="Chunks uploaded at once (default 4).")
    p.add_argument("--big-gib", type=int, default=0, help="Also upload an N GiB generated file to ModelHarbor.")
    p.add_argument("--rounds", type=int, default=1, help="Repeat the timed phases; report the median (default 1).")
    p.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Extra environment for ModelHarbor (repeatable), e.g. MALLOC_ARENA_MAX=2 for experiments.",
    )
    p.add_argument("--workdir", type=Path, default=None, help="Parent of the temp dir (default: the system temp).")
    p.add_argument("--keep", action="store_true", help="Keep the temp dir (server logs, data) for inspection.")
    p.add_argument("--py-spy", type=Path, default=None, metavar="DIR", help="Profile ModelHarbor phases into DIR.")
    p.add_argument("--py-spy-native", action="store_true", help="With --py-spy: include native (C/Rust) frames.")
    args = p.parse_args(argv)
    if any("=" not in kv for kv in args.server_env):
        p.error("--server-env takes KEY=VALUE")
    if args.size_mib < 1 or args.chunk_mib < 1 or args.parallel < 1 or args.big_gib < 0 or args.rounds < 1:
        p.error("sizes and --parallel must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    parent = args.workdir or Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    size = args.size_mib * MiB
    # test file + raw whole + raw chunks (removed after their phase) + ModelHarbor copy + dd 1 GiB + margin
    need = 4 * size + GiB + 512 * MiB + args.big_gib * GiB
    free = shutil.disk_usage(parent).free
    if free < need:
        log(f"refusing to run: {free / GiB:.1f} GiB free in {parent}, this run needs about {need / GiB:.1f} GiB")
        return 2

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)  # also when started in the background, where SIGINT is ignored
    with contextlib.suppress(ValueError, OSError):
        signal.signal(signal.SIGHUP, on_term)

    workdir = Path(tempfile.mkdtemp(prefix="mh-bench-", dir=parent))
    res = Results()
    status = 0
    try:
        run(args, workdir, res)
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        status = 130
    except Exception:
        log("the run failed; partial results follow the traceback")
        import traceback

        traceback.print_exc()
        status = 3
    finally:
        with shielded():
            if args.keep:
                log(f"kept {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
    if status and not res.phases:
        return status
    print(
        f"\nModelHarbor upload benchmark: {args.size_mib} MiB file, {args.chunk_mib} MiB chunks, "
        f"{args.parallel} parallel, {os.cpu_count()} CPUs, workdir on {parent}"
        + (" (PARTIAL)" if status else "")
        + "\n"
    )
    print(report(args, res))
    return status or (0 if all(ok for _, ok, _ in res.checks) else 1)


if __name__ == "__main__":
    sys.exit(main())
