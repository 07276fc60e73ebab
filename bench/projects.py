"""Domino project listings with many projects (issue 16): p50/p95 of the public and gateway listings.

    .venv/bin/python bench/projects.py [--projects 10000] [--samples 200] [--keep]

Starts ``modelharbor serve`` (fresh data dir, SQLite) as a subprocess on a free loopback port, creates
``--projects`` projects over HTTP as the admin (``POST /v4/projects``; two tags each from a pool of 50, every
tenth one private, every seventh one with a collaborator), then, as a member of the organisation (so the
visibility rule is in every query), measures ``--samples`` requests each:

- ``GET /api/projects/beta/projects`` (the public listing; a page of 10 at random offsets, and of 100);
- ``GET /v4/gateway/projects?relationship=Popular`` (the gateway's longest answer: 1,000 projects, its cap) and
  ``relationship=Collaborating`` (the member's ~1,400);
- ``GET /v4/gateway/projects/findProjectByOwnerAndName`` (the client's constructor lookup).

Prints p50/p95 in ms and the check against the target (listing p95 ≤ 20 ms). Not a test: figures depend on the
machine. See bench/README.md.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from upload import ADMIN_KEY, ClientPool, Server, log, shielded, start_pair

TARGET_P95_MS = 20.0
DOMINO = {"X-Domino-Api-Key": ADMIN_KEY}


def p(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--projects", type=int, default=10_000)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument(
        "--keep", action="store_true", help="Keep the temp dir (server log, the 10,000 projects' database)."
    )
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mh-bench-projects-", dir=args.workdir))
    servers: list[Server] = []
    out: dict[str, float] = {}
    rng = random.Random(16)
    try:
        raw, mh = start_pair(work, work / "raw-sink", work / "mh-data", [], servers)
        mh.wait_healthy()
        pool = ClientPool()
        c = pool.get()
        native = {"Authorization": f"Bearer {ADMIN_KEY}"}
        member = c.post(f"{mh.base}/api/v1/users", json={"username": "bench-member"}, headers=native).json()
        key = c.post(f"{mh.base}/api/v1/keys", json={"name": "bench", "username": "bench-member"}, headers=native)
        key.raise_for_status()
        as_member = {"X-Domino-Api-Key": key.json()["key"]}

        log(f"creating {args.projects} projects …")
        t0 = time.perf_counter()

        def create(i: int) -> None:
            body = {
                "name": f"project-{i:05d}",
                "visibility": "Private" if i % 10 == 0 else "Public",
                "description": f"bench project {i}",
                "tags": {"tagNames": [f"tag-{i % 50}", f"tag-{(i * 7) % 50}"]},
                "collaborators": (
                    [{"collaboratorId": member["id"], "projectRole": "Contributor"}] if i % 7 == 0 else []
                ),
            }
            r = pool.get().post(f"{mh.base}/v4/projects", json=body, headers=DOMINO)
            if r.status_code != 200:
                raise RuntimeError(f"{r.status_code}: {r.text[:300]}")

        with ThreadPoolExecutor(4) as ex:
            list(ex.map(create, range(args.projects)))
        out["create projects/s"] = args.projects / (time.perf_counter() - t0)

        def measure(name: str, url: str, check) -> None:
            ms: list[float] = []
            for _ in range(args.samples):
                u = url() if callable(url) else url
                t = time.perf_counter()
                r = c.get(u, headers=as_member)
                ms.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200 and check(r.json()), (u, r.status_code, r.text[:200])
            out[f"{name} p50 ms"], out[f"{name} p95 ms"] = p(ms, 0.5), p(ms, 0.95)

        visible = c.get(f"{mh.base}/api/projects/beta/projects?limit=1", headers=as_member).json()
        total = visible["metadata"]["totalCount"]
        out["projects the member sees"] = total
        base = f"{mh.base}/api/projects/beta/projects"
        measure(
            "public page of 10",
            lambda: f"{base}?offset={rng.randrange(0, total - 10)}&limit=10",
            lambda b: len(b["projects"]) == 10 and b["metadata"]["totalCount"] == total,
        )
        measure(
            "public page of 100",
            lambda: f"{base}?offset={rng.randrange(0, total - 100)}&limit=100",
            lambda b: len(b["projects"]) == 100,
        )
        gw = f"{mh.base}/v4/gateway/projects"
        measure("gateway Popular (1,000)", f"{gw}?relationship=Popular", lambda b: 0 < len(b) <= 1000)
        measure("gateway Collaborating", f"{gw}?relationship=Collaborating", lambda b: len(b) > 100)
        measure(
            "findProjectByOwnerAndName",
            lambda: (
                f"{gw}/findProjectByOwnerAndName?ownerName=admin&projectName=project-{rng.randrange(1, 9) * 1001:05d}"
            ),
            lambda b: len(b["id"]) == 24,
        )
        pool.close()
    finally:
        with shielded():
            for s in reversed(servers):
                s.stop()
            if args.keep:
                log(f"kept {work}")
            else:
                shutil.rmtree(work, ignore_errors=True)

    print(f"\nproject listing bench: {args.projects} projects, {args.samples} samples each")
    for k, v in out.items():
        print(f"  {k:36s} {v:10.2f}")
    print()
    for name in ("public page of 10", "public page of 100", "gateway Popular (1,000)", "gateway Collaborating"):
        value = out[f"{name} p95 ms"]
        print(f"  {'PASS' if value <= TARGET_P95_MS else 'MISS'}  {name + ' p95 ≤ 20 ms':40s} {value:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
