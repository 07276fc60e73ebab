"""Datasets (issue 17): uploading a folder and snapshotting a large dataset, next to the raw streaming sink, in one run.

    .venv/bin/python bench/datasets.py [--files 100] [--total-mib 1024] [--rounds 2]
                                       [--snapshot-files 10000] [--snapshot-file-kib 1024] [--keep]

Starts bench/raw_sink.py and ``modelharbor serve`` (fresh data dir, SQLite) as subprocesses on free loopback ports,
builds a folder of ``--files`` files (``--total-mib`` in all, incompressible) and measures, alternating each round:

1. **the real Domino client**: ``dominodatalab`` 2.2.0's ``datasets_upload_files`` (its 8 MiB chunks, MD5 per chunk,
   10 threads, a ``test`` request per chunk, multipart bodies), run from its own venv (``.venv-clients/domino``,
   made as the e2e tests make it), into a fresh dataset;
2. **the raw sink with the same chunking**: the same folder cut into the same 8 MiB chunks, MD5 computed per chunk, sent
   by 10 threads with the same HTTP library (``requests``, same venv) as ``PUT /sink/{file}/{n}``;
3. **the native CLI**: ``modelharbor datasets upload DATASET FOLDER`` (its defaults: 16 MiB chunks, 4 in parallel,
   SHA-256 verified) into a fresh dataset.

Then a dataset of ``--snapshot-files`` files of ``--snapshot-file-kib`` KiB (10 GiB by default, distinct bytes, sent
with the SDK's dataset upload) is frozen by ``POST /api/datasetrw/v1/datasets/{id}/snapshots`` three times: the time
of each, and the data directory's disk usage before and after (nothing copied: a row each).

Targets: client ≥ 0.7× the sink, CLI ≥ 0.8× the sink, a snapshot ≤ 1 s. Not a test: figures depend on the machine.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from upload import ADMIN_KEY, MiB, Server, children_cpu_seconds, cpu_seconds, log, settle, shielded, start_pair

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests/e2e/domino_client.py builds the client's venv
TARGET_CLIENT, TARGET_CLI, TARGET_SNAPSHOT_S = 0.7, 0.8, 1.0
CHUNK = 8 * MiB
DOMINO = {"X-Domino-Api-Key": ADMIN_KEY}
NATIVE = {"Authorization": f"Bearer {ADMIN_KEY}"}

# run with the Domino client's python: argv = mode, base url, key, target (dataset id or "-"), folder
DRIVER = r"""
import hashlib, json, os, sys, time
from concurrent.futures import ThreadPoolExecutor
import requests
mode, base, key, target, folder = sys.argv[1:6]
CHUNK = 8 * 2**20
os.chdir(os.path.dirname(folder))
name = os.path.basename(folder)
files = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(name) for f in fs)
t0 = time.perf_counter()
if mode == "client":
    from domino import Domino
    d = Domino("admin/bench", api_key=key, host=base)
    d.datasets_upload_files(target, name)
else:
    local = __import__("threading").local()
    def put(job):
        path, n, size = job
        s = getattr(local, "s", None)
        if s is None:
            s = local.s = requests.Session()
        with open(path, "rb") as f:
            f.seek(n * CHUNK)
            data = f.read(CHUNK)
        hashlib.md5(data).hexdigest().upper()
        r = s.put(f"{base}/sink/{path.replace('/', '__')}/{n}", data=data)
        r.raise_for_status()
    jobs = []
    for p in files:
        size = os.path.getsize(p)
        jobs += [(p, n, size) for n in range(max(1, -(-size // CHUNK)))]
    with ThreadPoolExecutor(10) as ex:
        list(ex.map(put, jobs))
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


def make_folder(folder: Path, files: int, total: int, seed: int) -> int:
    """``files`` files of about ``total`` bytes in all, in a few sub-folders, each distinct and incompressible."""
    pool = os.urandom(64 * MiB)
    per = total // files
    written = 0
    for i in range(files):
        path = folder / f"part-{i % 7}" / f"file-{seed}-{i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        size = per if i < files - 1 else total - per * (files - 1)
        start = (i * 7919 * 4096) % (63 * MiB)
        with open(path, "wb") as f:
            stamp = f"{seed}:{i}:".encode()
            f.write(stamp)
            left = size - len(stamp)
            while left > 0:
                piece = pool[start : start + min(left, MiB)]
                f.write(piece)
                left -= len(piece)
        written += size
    return written


def disk_usage(path: Path) -> int:
    return int(subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True).stdout.split()[0])


def new_dataset(c: httpx.Client, base: str, project_id: str, name: str) -> str:
    r = c.post(f"{base}/api/datasetrw/v1/datasets", json={"name": name, "projectId": project_id}, headers=DOMINO)
    r.raise_for_status()
    return r.json()["dataset"]["id"]


def drive(python: Path, mode: str, base: str, target: str, folder: Path) -> float:
    done = subprocess.run(
        [str(python), "-c", DRIVER, mode, base, ADMIN_KEY, target, str(folder)],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{mode} driver failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds"]


def cli_upload(mh: Server, dataset: str, folder: Path, work: Path) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELHARBOR_")}
    env.update(MODELHARBOR_URL=mh.base, MODELHARBOR_API_KEY=ADMIN_KEY, MODELHARBOR_CONFIG=str(work / "cli.toml"))
    exe = Path(sys.executable).parent / "modelharbor"
    t0 = time.perf_counter()
    done = subprocess.run(
        [str(exe), "datasets", "upload", dataset, str(folder)], env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"modelharbor datasets upload failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--total-mib", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--snapshot-files", type=int, default=10_000)
    ap.add_argument("--snapshot-file-kib", type=int, default=1024)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="Keep the temp dir (server logs, the folders, the data dir).")
    args = ap.parse_args()
    from tests.e2e.domino_client import ensure_domino_venv

    python = ensure_domino_venv()
    work = Path(tempfile.mkdtemp(prefix="mh-bench-ds-", dir=args.workdir))
    folder = work / "upload" / "survey"
    total = make_folder(folder, args.files, args.total_mib * MiB, 0)
    log(f"{args.files} files, {total / MiB:.0f} MiB in {folder}")
    servers: list[Server] = []
    out: dict[str, float] = {}
    try:
        raw, mh = start_pair(work, work / "raw-sink", work / "mh-data", [], servers)
        raw.wait_healthy()
        mh.wait_healthy()
        c = httpx.Client(timeout=600)
        project = c.post(f"{mh.base}/api/v1/projects", json={"name": "bench"}, headers=NATIVE).json()["id"]
        times: dict[str, list[float]] = {"sink": [], "client": [], "cli": []}
        cpu: dict[str, list[float]] = {f"{w} {side}": [] for w in times for side in ("server", "sender")}
        files = sorted(folder.rglob("*.bin"))

        def phase(what: str, server: Server, run) -> None:
            settle(*files)
            server_cpu, sender_cpu = cpu_seconds(server.pid), children_cpu_seconds()
            times[what].append(run())
            cpu[f"{what} server"].append(cpu_seconds(server.pid) - server_cpu)
            cpu[f"{what} sender"].append(children_cpu_seconds() - sender_cpu)

        for k in range(args.rounds):
            log(f"round {k + 1}: raw sink …")
            phase("sink", raw, lambda: drive(python, "sink", raw.base, "-", folder))
            log(f"round {k + 1}: the Domino client …")
            dataset = new_dataset(c, mh.base, project, f"c{k}")
            phase("client", mh, lambda ds=dataset: drive(python, "client", mh.base, ds, folder))
            log(f"round {k + 1}: the native CLI …")
            dataset = new_dataset(c, mh.base, project, f"n{k}")
            phase("cli", mh, lambda ds=dataset: cli_upload(mh, ds, folder, work))
        for what, runs in times.items():
            out[f"{what} MiB/s"] = total / MiB / min(runs)
        for what, runs in cpu.items():  # CPU seconds per GiB, the mean over the rounds (two cores in all)
            out[f"{what} CPU s/GiB"] = sum(runs) / len(runs) / (total / 2**30)
        out["client / sink"] = out["client MiB/s"] / out["sink MiB/s"]
        out["cli / sink"] = out["cli MiB/s"] / out["sink MiB/s"]

        big = work / "upload-big" / "big"
        log(f"snapshot: {args.snapshot_files} files of {args.snapshot_file_kib} KiB …")
        big_total = make_folder(big, args.snapshot_files, args.snapshot_files * args.snapshot_file_kib * 1024, 1)
        ds = new_dataset(c, mh.base, project, "big")
        t0 = time.perf_counter()
        cli_upload(mh, ds, big, work)
        out["10k-file upload (CLI) MiB/s"] = big_total / MiB / (time.perf_counter() - t0)
        out["dataset GiB"] = big_total / 2**30
        before = disk_usage(work / "mh-data")
        snaps = []
        for _ in range(3):
            t0 = time.perf_counter()
            r = c.post(
                f"{mh.base}/api/datasetrw/v1/datasets/{ds}/snapshots", json={"relativeFilePaths": []}, headers=DOMINO
            )
            snaps.append(time.perf_counter() - t0)
            r.raise_for_status()
        after = disk_usage(work / "mh-data")
        out["snapshot s (max of 3)"] = max(snaps)
        out["disk before MiB"] = before / MiB
        out["disk after MiB"] = after / MiB
        out["disk growth KiB"] = (after - before) / 1024
    finally:
        with shielded():
            for s in servers:
                s.stop()
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)  # the folders and the data dir: up to ~25 GiB
    print(f"\n{'figure':<36}{'value':>12}")
    for k, v in out.items():
        print(f"{k:<36}{v:>12.3f}")
    ok = (
        out["client / sink"] >= TARGET_CLIENT
        and out["cli / sink"] >= TARGET_CLI
        and out["snapshot s (max of 3)"] <= TARGET_SNAPSHOT_S
    )
    print(
        f"\ntargets: client ≥ {TARGET_CLIENT}× sink, CLI ≥ {TARGET_CLI}× sink, snapshot ≤ {TARGET_SNAPSHOT_S} s: "
        f"{'met' if ok else 'NOT met'}" + (f"  (kept {work}; delete it when done)" if args.keep else "")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
