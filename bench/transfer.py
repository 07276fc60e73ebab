"""Project export/import speed of ModelHarbor next to this disk's own sequential write speed, in one run.

    .venv/bin/python bench/transfer.py [--versions 4] [--package-mib 256] [--rounds 3] [--workdir DIR]
                                       [--py-spy DIR] [--server-env K=V …] [--max-minutes 30] [--keep]

Starts two ``modelharbor serve`` (each a fresh data dir, SQLite, local blobs) on free loopback ports and fills
project ``src`` of the first with one deployment whose ``--versions`` versions each get a real package revision of
``--package-mib`` MiB (a tiny environment-free ``deployment.py`` plus random, incompressible bytes, stored
uncompressed; every build is waited for). Then, ``--rounds`` times:

1. ``dd if=/dev/zero bs=8M count=128 conv=fsync`` (1 GiB written and fsync'd) next to the servers' data dirs;
2. **export**: ``POST /api/v1/projects/src/exports {"all": true, "packages": true}`` until ``completed``; dd;
3. **download** of the zip (the SDK's resumable download, SHA-256 checked) and **upload** of it to both servers
   for the imports (the SDK's chunked upload) — for information;
4. dd; **import, same server**: ``POST /api/v1/projects/dstN/imports {"file_id", "skip_confirmation": true}``
   until ``completed`` (every package is a revision of the new project then; the organisation already holds the
   packages' bytes, so they are linked, not stored again); dd;
5. **import, other server**: the same on the second server, which holds none of the packages (every one is
   written and fsync'd); dd; then, untimed, the imported packages' builds are waited for on both (each must
   succeed), and the second server's imported deployment is deleted (so the next round's packages are new to it).

Each timed phase is compared with the mean of the dd runs just before and after it (the disk of a shared machine
varies by a factor of five from one minute to the next); the table shows every round, the server's CPU seconds
per phase and the medians. Issue 5's target: export and import ≥ 0.5× the disk's sequential write speed.
``--py-spy DIR`` records the servers during the first export and imports and prints the top functions. Loopback
only; bounded by ``--max-minutes``; the temp dir and the servers go at exit (also on Ctrl-C). See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from upload import (
    ADMIN_KEY,
    GiB,
    MiB,
    PySpy,
    Server,
    _descendants,
    cpu_seconds,
    free_port,
    log,
    measure_dd,
    modelharbor_cmd,
    server_env,
    shielded,
    summarize_profile,
)

from modelharbor.sdk import Client

TARGET_RATIO = 0.5
POLL = 0.05  # seconds between status polls of a timed phase
DEPLOYMENT_PY = """
class Deployment:
    def __init__(self, base_directory, context):
        pass

    def request(self, data):
        return data
"""


@dataclass
class Phase:
    name: str
    nbytes: int
    seconds: float
    cpu: float  # server CPU seconds (with its children) during the phase
    disk: float | None = None  # the mean of the dd figures measured just before and just after it
    target: bool = False

    @property
    def mibs(self) -> float:
        return self.nbytes / MiB / self.seconds if self.seconds > 0 else 0.0

    @property
    def ratio(self) -> float | None:
        return self.mibs / self.disk if self.disk else None


@dataclass
class Results:
    dd: list[float] = field(default_factory=list)
    rounds: list[list[Phase]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    profiles: dict[str, Path] = field(default_factory=dict)


class Deadline:
    def __init__(self, minutes: float):
        self.end = time.monotonic() + minutes * 60

    def check(self, what: str) -> None:
        if time.monotonic() > self.end:
            raise TimeoutError(f"--max-minutes exceeded during {what}")


class GroupServer(Server):
    """Stop the server's whole session (it forks deployment workers)."""

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(15)
        deadline = time.monotonic() + 10
        while _alive(self.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        self._log.close()

    def cpu(self) -> float:
        """CPU seconds of the server and its children (deployment workers) so far."""
        return sum(cpu_seconds(p) for p in [self.pid, *_descendants(self.pid)])


def _alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def make_package(path: Path, size: int, seed: int) -> None:
    """A package zip: deployment.py and ``size`` random bytes, stored (no compression)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("deployment.py", DEPLOYMENT_PY)
        zf.writestr("version.txt", f"{seed}\n")
        with zf.open("weights.bin", "w", force_zip64=True) as out:
            left = size
            while left:
                piece = os.urandom(min(8 * MiB, left))
                out.write(piece)
                left -= len(piece)


def wait_status(fetch, done: tuple[str, ...], deadline: Deadline, what: str) -> tuple[Any, float]:
    """Poll every POLL s until the status is one of ``done``: (the item, seconds since the call)."""
    t0 = time.perf_counter()
    while True:
        item = fetch()
        if item.status in done:
            return item, time.perf_counter() - t0
        deadline.check(what)
        time.sleep(POLL)


def run(args: argparse.Namespace, workdir: Path, res: Results) -> None:
    deadline = Deadline(args.max_minutes)
    pyspy_exe = None
    if args.py_spy:
        pyspy_exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(pyspy_exe).exists():
            raise SystemExit("--py-spy: py-spy not found (.venv/bin/pip install py-spy)")
        args.py_spy.mkdir(parents=True, exist_ok=True)
    servers: list[GroupServer] = []
    try:
        for name in ("mh", "mh-other"):
            port = free_port()
            servers.append(
                GroupServer(
                    "ModelHarbor" if name == "mh" else "ModelHarbor (other)",
                    [*modelharbor_cmd(), "serve", "--host", "127.0.0.1", "--port", str(port)],
                    server_env(workdir / f"{name}-data", args.server_env),
                    workdir,  # no stray .env from the repo
                    workdir / f"{name}.log",
                    port,
                )
            )
        for server in servers:
            log(f"{server.name} pid {server.pid} on {server.base}; healthy after {server.wait_healthy():.1f} s")
        server, other = servers
        with Client(server.base, ADMIN_KEY, timeout=600) as client, Client(other.base, ADMIN_KEY, timeout=600) as oc:
            _fill(args, client, workdir, deadline)
            for r in range(args.rounds):
                res.rounds.append(_round(args, res, (client, server), (oc, other), workdir, deadline, pyspy_exe, r))
    finally:
        with shielded():
            for server in servers:
                server.stop()


def dd(res: Results, workdir: Path) -> float | None:
    """The disk's durable sequential write speed now (1 GiB, fsync, next to the data dir), in MiB/s."""
    os.sync()
    value = measure_dd(workdir)
    if value:
        res.dd.append(value)
    return value


def mean(*values: float | None) -> float | None:
    got = [v for v in values if v]
    return sum(got) / len(got) if got else None


def _fill(args, client: Client, workdir: Path, deadline: Deadline) -> None:
    """Project src: one deployment, a version per package, each package a real revision (built)."""
    size = args.package_mib * MiB
    client.projects.create("src")
    client.deployments.create("src", "blob", plain=True)
    revisions = []
    for i in range(args.versions):
        version = f"v{i + 1}"
        client.deployments.create_version("src", "blob", version, maximum_idle_time=10)
        package = workdir / f"package-{version}.zip"
        make_package(package, size, i)
        log(f"uploading the {args.package_mib} MiB package of {version} …")
        revisions.append((version, client.deployments.upload_package("src", "blob", version, package).id))
        package.unlink()
        deadline.check("the packages")
    for version, rid in revisions:
        rev = client.deployments.wait_for_revision(
            "src", "blob", version, rid, timeout=max(60, deadline.end - time.monotonic())
        )
        if rev.status != "success":
            raise RuntimeError(f"the build of {version} failed: {rev['error_message']}")
    log(f"{args.versions} revisions built; project src holds {args.versions * args.package_mib} MiB of packages")
    time.sleep(1)  # let the build checks' instances settle


def _round(args, res: Results, main, other, workdir: Path, deadline: Deadline, spy, r: int):
    """dd, export, dd, download, uploads, dd, import (same server), dd, import (other server), dd."""
    (client, server), (oc, oserver) = main, other
    phases: list[Phase] = []
    profile = args.py_spy if args.py_spy and r == 0 else None
    before = dd(res, workdir)
    log(f"round {r + 1}: dd {before or 0:.0f} MiB/s")

    # 1. export
    cpu0 = server.cpu()
    with PySpy(spy, server.pid, profile / "export.txt" if profile else None):
        t0 = time.perf_counter()
        e = client.transfer.create_export("src", everything=True, packages=True)
        e, _ = wait_status(
            lambda: client.transfer.get_export("src", e.id), ("completed", "failed"), deadline, "the export"
        )
        t_export = time.perf_counter() - t0
    cpu_export = server.cpu() - cpu0
    if e.status != "completed":
        raise RuntimeError(f"the export failed: {e['error_message']}")
    if profile:
        res.profiles["export"] = profile / "export.txt"
    middle = dd(res, workdir)
    phases.append(Phase("export (create → completed)", e.size, t_export, cpu_export, mean(before, middle), True))
    log(f"  export: {e['size'] / MiB:.0f} MiB zip in {t_export:.2f} s; dd {middle or 0:.0f} MiB/s")

    # 2. download, 3. upload it to both servers for the imports (not targets: the client's side, for information)
    target = workdir / "export.zip"
    cpu0, t0 = server.cpu(), time.perf_counter()
    client.transfer.download_export("src", e.id, target)
    phases.append(Phase("download (resumable, SHA-256 checked)", e.size, time.perf_counter() - t0, server.cpu() - cpu0))
    records = []
    for c, srv in ((client, server), (oc, oserver)):
        os.sync()
        cpu0, t0 = srv.cpu(), time.perf_counter()
        records.append(c.files.upload(target, context="project-import-upload", state_dir=workdir / f"state-{srv.port}"))
        if c is client:
            phases.append(
                Phase("upload (chunked, 4 parallel)", records[0].size, time.perf_counter() - t0, srv.cpu() - cpu0)
            )
    target.unlink()
    before = dd(res, workdir)
    log(f"  download and uploads done; dd {before or 0:.0f} MiB/s")

    # 4. import into a project of its own on the same server (its packages' bytes already held), then 5. on the
    # other server (none held: every package written)
    dst = f"dst{r + 1}"
    for kind, c, srv, record in (("same", client, server, records[0]), ("other", oc, oserver, records[1])):
        c.projects.create(dst)
        name = "import, same server (packages held)" if kind == "same" else "import, other server (all written)"
        cpu0 = srv.cpu()
        with PySpy(spy, srv.pid, profile / f"import-{kind}.txt" if profile else None):
            t0 = time.perf_counter()
            imp = c.transfer.create_import(dst, file_id=record.id, skip_confirmation=True)
            imp, _ = wait_status(
                lambda c=c, imp=imp: c.transfer.get_import(dst, imp.id),
                ("completed", "failed", "confirmation"),
                deadline,
                "the import",
            )
            t_import = time.perf_counter() - t0
        cpu_import = srv.cpu() - cpu0
        if imp.status != "completed":
            raise RuntimeError(f"the import ({kind}) ended {imp['status']}: {imp['error_message']}")
        if profile:
            res.profiles[f"import ({kind} server)"] = profile / f"import-{kind}.txt"
        after = dd(res, workdir)
        phases.append(Phase(name, imp.size, t_import, cpu_import, mean(before, after), True))
        log(f"  {name}: {imp['size'] / MiB:.0f} MiB in {t_import:.2f} s; dd {after or 0:.0f} MiB/s")
        before = after
    for c in (client, oc):
        made = [v for v in c.deployments.versions(dst, "blob") if v.latest_revision]
        if len(made) != args.versions:
            raise RuntimeError(f"the import made {len(made)} revisions, not {args.versions}")
        for v in made:  # untimed: the imported packages build like any upload (and the next round starts after)
            left = max(60, deadline.end - time.monotonic())
            rev = c.deployments.wait_for_revision(dst, "blob", v.version, v.latest_revision, timeout=left)
            if rev.status != "success":
                raise RuntimeError(f"the imported package of {v['version']} did not build: {rev['error_message']}")
    if r == 0:
        res.notes.append(
            f"each import created {args.versions} versions with a package revision each (dst1, dst2, … on both "
            "servers); all built"
        )
    client.files.delete(records[0].id)
    oc.files.delete(records[1].id)
    oc.deployments.delete(dst, "blob")  # the other server forgets the packages again: the next round writes them
    client.transfer.delete_export("src", e.id)
    deadline.check("the round")
    return phases


def median(values: list[float]) -> float | None:
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def report(args: argparse.Namespace, res: Results) -> str:
    lines = []
    if res.dd:
        lines.append(
            f"disk sequential write (dd 1 GiB, fsync, next to the data dir), {len(res.dd)} runs: "
            f"min {min(res.dd):.0f}, median {median(res.dd):.0f}, max {max(res.dd):.0f} MiB/s"
        )
    lines.append(
        "each target phase is compared with the mean of the dd runs just before and just after it; "
        f"issue 5's target: export and import ≥ {TARGET_RATIO}× the disk"
    )
    lines.append("")
    lines.append(
        f"{'round':<5} {'phase':<38} {'MiB':>7} {'seconds':>8} {'MiB/s':>7} {'server CPU s':>12} "
        f"{'disk MiB/s':>10} {'× disk':>7}"
    )
    for r, phases in enumerate(res.rounds, 1):
        for p in phases:
            disk = f"{p.disk:.0f}" if p.disk else ""
            ratio = f"{p.ratio:.2f}" if p.ratio is not None else ""
            lines.append(
                f"{r:<5} {p.name:<38} {p.nbytes / MiB:>7.1f} {p.seconds:>8.2f} {p.mibs:>7.1f} {p.cpu:>12.2f} "
                f"{disk:>10} {ratio:>7}"
            )
    if res.rounds:
        lines.append("")
        lines.append("medians over the rounds:")
        for i, p in enumerate(res.rounds[0]):
            same = [phases[i] for phases in res.rounds if len(phases) > i]
            mibs, cpu = median([x.mibs for x in same]), median([x.cpu for x in same])
            line = f"  {p.name:<38} {mibs:>7.1f} MiB/s, server CPU {cpu:.2f} s"
            if p.target:
                ratio = median([x.ratio for x in same])
                if ratio is not None:
                    verdict = "MET" if ratio >= TARGET_RATIO else "MISSED"
                    line += f", {ratio:.2f}× the disk (target ≥ {TARGET_RATIO}: {verdict})"
            lines.append(line)
    lines += [f"note: {n}" for n in res.notes]
    for name, path in res.profiles.items():
        lines.append(f"\nprofile of the server during the first {name}:")
        lines.append(summarize_profile(path))
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--versions", type=int, default=4, help="Versions with a package each (default 4).")
    ap.add_argument("--rounds", type=int, default=3, help="Export/import rounds (default 3; medians reported).")
    ap.add_argument("--package-mib", type=int, default=256, help="Size of each package in MiB (default 256).")
    ap.add_argument("--workdir", type=Path, help="Parent of the temp dir (default: the system temp dir).")
    ap.add_argument("--py-spy", type=Path, metavar="DIR", help="Profile the server during export and import.")
    ap.add_argument("--server-env", action="append", default=[], metavar="K=V", help="Extra server settings.")
    ap.add_argument("--max-minutes", type=float, default=30.0, help="Give up after this long (default 30).")
    ap.add_argument("--keep", action="store_true", help="Keep the temp dir (server log) at the end.")
    args = ap.parse_args(argv)
    if args.versions < 1 or args.package_mib < 1 or args.rounds < 1:
        ap.error("--versions, --package-mib and --rounds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    parent = args.workdir or Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    total = args.versions * args.package_mib * MiB
    # packages + export zip + download + 2 import uploads + the other server's revisions + dd
    need = 7 * total + GiB + 512 * MiB
    free = shutil.disk_usage(parent).free
    if free < need:
        log(f"refusing to run: {free / GiB:.1f} GiB free in {parent}, this run needs about {need / GiB:.1f} GiB")
        return 2

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    with contextlib.suppress(ValueError, OSError):
        signal.signal(signal.SIGHUP, on_term)
    workdir = Path(tempfile.mkdtemp(prefix="mh-transfer-", dir=parent))
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
    if status and not res.rounds:
        return status
    print(
        f"\nModelHarbor transfer benchmark: {args.versions} × {args.package_mib} MiB packages "
        f"({total / MiB:.0f} MiB), {os.cpu_count()} CPUs, workdir on {parent}"
        + (f", server env {' '.join(args.server_env)}" if args.server_env else "")
        + (" (PARTIAL)" if status else "")
        + "\n"
    )
    print(report(args, res))
    targets = [i for i, p in enumerate(res.rounds[0]) if p.target] if res.rounds else []
    missed = [
        i
        for i in targets
        if (m := median([phases[i].ratio for phases in res.rounds if len(phases) > i])) is not None and m < TARGET_RATIO
    ]
    return status or (1 if missed else 0)


if __name__ == "__main__":
    sys.exit(main())
