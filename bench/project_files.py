"""Versioned project files (issue 16): ModelHarbor's Domino routes next to the raw streaming sink, in one run.

    .venv/bin/python bench/project_files.py [--size-mib 1024] [--rounds 4] [--files 10000] [--samples 200]

Starts bench/raw_sink.py and ``modelharbor serve`` (fresh data dir, SQLite) as subprocesses on free loopback
ports, then measures side by side:

1. a ``--size-mib`` upload: the raw sink's ``PUT /sink/{name}`` vs ``PUT /v1/projects/{owner}/{project}/{path}``
   (Domino's client's ``files_upload``: a new commit, bytes streamed into the files service); best of ``--rounds``;
2. its download: the raw sink's ``GET /sink/{name}`` vs ``GET /api/projects/v1/projects/{id}/files/{commit}/{path}/
   content`` (op 130);
3. a project of ``--files`` files (100 per directory), then: listing a commit (``GET …/files/{commit}/{dir}``,
   a directory of 100, and the root) ``--samples`` times each → p50/p95; committing one changed file
   (``PUT``) ``--samples`` times → p50/p95, and the rows it writes (every table's row count before and after,
   read from the SQLite file between requests).

Prints a table and the ratios against the targets (upload ≥ 0.8×, download ≥ 0.9×, listing p95 ≤ 20 ms,
commit ≤ 20 ms and ≤ 50 rows). Not a test: figures depend on the machine. See bench/README.md.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from upload import (
    ADMIN_KEY,
    ClientPool,
    MiB,
    Server,
    download,
    file_pieces,
    log,
    make_test_file,
    put_stream,
    settle,
    shielded,
    start_pair,
)

TARGET_UPLOAD, TARGET_DOWNLOAD = 0.8, 0.9
TARGET_LIST_P95_MS, TARGET_COMMIT_MS, TARGET_ROWS = 20.0, 20.0, 50
DOMINO = {"X-Domino-Api-Key": ADMIN_KEY}


def p(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def rows(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        tables = [r[0] for r in c.execute("select name from sqlite_master where type='table'")]
        return sum(c.execute(f'select count(*) from "{t}"').fetchone()[0] for t in tables)


def timed_upload(pool: ClientPool, url: str, src: Path, size: int, headers: dict | None = None) -> float:
    settle(src)
    t0 = time.perf_counter()
    put_stream(pool, url, file_pieces(src, 0, size), size, headers)
    return time.perf_counter() - t0


def timed_download(pool: ClientPool, url: str, size: int, headers: dict | None = None) -> float:
    settle()  # both servers read from the disk: the page cache dropped (as root) before each download
    t0 = time.perf_counter()
    n, _ = download(pool, url, headers)
    if n != size:
        raise RuntimeError(f"GET {url}: {n} bytes, not {size}")
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=1024)
    # best of 4: on a shared VM the disk alone moves one 1 GiB round (the sink measured 267–539 MiB/s run to run)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    size = args.size_mib * MiB
    work = Path(tempfile.mkdtemp(prefix="mh-bench-pf-", dir=args.workdir))
    src = work / "testfile.bin"
    log(f"creating {args.size_mib} MiB test file in {work} …")
    make_test_file(src, size)
    raw_dir, mh_dir = work / "raw-sink", work / "mh-data"
    servers: list[Server] = []
    out: dict[str, float] = {}
    try:
        raw, mh = start_pair(work, raw_dir, mh_dir, [], servers)
        raw.wait_healthy()
        mh.wait_healthy()
        pool = ClientPool()
        native = {"Authorization": f"Bearer {ADMIN_KEY}"}
        c = pool.get()
        big = c.post(f"{mh.base}/api/v1/projects", json={"name": "bench-big"}, headers=native).json()["id"]
        c.post(f"{mh.base}/api/v1/projects", json={"name": "bench-10k"}, headers=native).raise_for_status()
        P = f"{mh.base}/v1/projects/admin"

        # 1–2: the big file, alternating servers each round
        ups: dict[str, list[float]] = {"raw": [], "mh": []}
        downs: dict[str, list[float]] = {"raw": [], "mh": []}
        for k in range(args.rounds):
            log(f"round {k + 1}: upload …")
            ups["raw"].append(timed_upload(pool, f"{raw.base}/sink/big{k}", src, size))
            ups["mh"].append(timed_upload(pool, f"{P}/bench-big/data/big{k}.bin", src, size, DOMINO))
            sha = c.get(f"{P}/bench-big/commits", headers=DOMINO).json()[0]
            log(f"round {k + 1}: download …")
            downs["raw"].append(timed_download(pool, f"{raw.base}/sink/big{k}", size))
            url = f"{mh.base}/api/projects/v1/projects/{big}/files/{sha}/data/big{k}.bin/content"
            downs["mh"].append(timed_download(pool, url, size, DOMINO))
        for what, runs in (("upload", ups), ("download", downs)):
            for server in ("raw", "mh"):
                out[f"{what} {server} MiB/s"] = size / MiB / min(runs[server])

        # 3: a project of many files (100 per directory), filled over HTTP
        log(f"filling a project with {args.files} files …")
        t0 = time.perf_counter()

        def put(i: int) -> None:
            r = pool.get().put(f"{P}/bench-10k/d{i // 100:03d}/f{i:05d}.txt", content=f"{i}".encode(), headers=DOMINO)
            if r.status_code != 201:
                raise RuntimeError(f"{r.status_code}: {r.text[:300]}")

        with ThreadPoolExecutor(4) as ex:
            list(ex.map(put, range(args.files)))
        out["fill commits/s"] = args.files / (time.perf_counter() - t0)
        head = c.get(f"{P}/bench-10k/commits", headers=DOMINO).json()
        out["commits"] = len(head)
        sha = head[0]
        dirs = max(1, args.files // 100)
        target = f"d{min(42, dirs - 1):03d}"
        listing: dict[str, list[float]] = {"dir": [], "root": []}
        for _ in range(args.samples):
            for name, path, n in (("dir", target, 100), ("root", "", dirs)):
                t = time.perf_counter()
                r = c.get(f"{P}/bench-10k/files/{sha}/{path}", headers=DOMINO)
                listing[name].append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200 and len(r.json()["data"]) == n, r.text[:200]
        for name, ms in listing.items():
            out[f"list {name} p50 ms"], out[f"list {name} p95 ms"] = p(ms, 0.5), p(ms, 0.95)
        commit_ms: list[float] = []
        written: list[int] = []
        db = mh_dir / "modelharbor.db"
        for i in range(args.samples):
            before = rows(db) if db.exists() else 0
            t = time.perf_counter()
            r = c.put(f"{P}/bench-10k/{target}/changed.txt", content=f"change {i}".encode(), headers=DOMINO)
            commit_ms.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 201, r.text
            if db.exists():
                written.append(rows(db) - before)
        out["commit p50 ms"], out["commit p95 ms"] = p(commit_ms, 0.5), p(commit_ms, 0.95)
        out["rows per commit (net)"] = statistics.median(written) if written else float("nan")
        pool.close()
    finally:
        with shielded():
            for s in reversed(servers):
                s.stop()

    print(f"\nproject files bench: {args.size_mib} MiB file, best of {args.rounds}; {args.files} files")
    for k, v in out.items():
        print(f"  {k:28s} {v:10.2f}")
    checks = [
        ("upload ≥ 0.8× raw", out["upload mh MiB/s"] / out["upload raw MiB/s"], TARGET_UPLOAD, True),
        ("download ≥ 0.9× raw", out["download mh MiB/s"] / out["download raw MiB/s"], TARGET_DOWNLOAD, True),
        ("list dir p95 ≤ 20 ms", out["list dir p95 ms"], TARGET_LIST_P95_MS, False),
        ("list root p95 ≤ 20 ms", out["list root p95 ms"], TARGET_LIST_P95_MS, False),
        ("commit p50 ≤ 20 ms", out["commit p50 ms"], TARGET_COMMIT_MS, False),
        ("rows per commit ≤ 50", out["rows per commit (net)"], TARGET_ROWS, False),
    ]
    print()
    for name, value, target, higher in checks:
        ok = value >= target if higher else value <= target
        print(f"  {'PASS' if ok else 'MISS'}  {name:24s} {value:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
