"""Serving A/B: the same prediction load on two ModelHarbor source trees at once, in alternating rounds.

    .venv/bin/python bench/serving_ab.py --a /path/to/old/tree [--b .] [--rounds 8] [--duration 8] [--connections 8]

For a refactor that must not cost speed (issue 14: "within ±5 %"). One run of bench/serving.py per tree is too
noisy for that on a small shared machine: a neighbour's burst moves a 20 s figure by 5–10 %. Here both servers run
side by side (each ``modelharbor serve`` with its tree's ``src/`` first on PYTHONPATH, its own data dir, the iris
deployment of bench/serving.py), and the load goes to A and B in turns (A B B A A B …) for ``--rounds`` rounds of
``--duration`` seconds, so drift hits both alike. Each round records, per tree, requests/s and the CPU per request
of the server process and of its children (the deployment's worker) from /proc.

Prints every round, then per tree the median of each figure and B/A: the median of the per-round-pair ratios
(each B round against the A round next to it). CPU per request is the steady figure; throughput moves with the
machine.
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from registry import start_modelharbor
from serving import ROW, deploy_iris, fitted_model, run_wrk
from upload import _descendants, cpu_seconds, log


def start(tree: Path, workdir: Path, model_pkl: Path, instances: int):
    workdir.mkdir(parents=True)
    src = tree.resolve() / "src"
    if not (src / "modelharbor").is_dir():
        raise SystemExit(f"{tree} has no src/modelharbor: give the root of a ModelHarbor checkout")
    path = os.pathsep.join(p for p in (str(src), os.environ.get("PYTHONPATH", "")) if p)
    srv = start_modelharbor(workdir, [f"PYTHONPATH={path}"])
    srv.wait_healthy()
    url, headers = deploy_iris(srv.base, workdir, model_pkl, instances)
    return srv, url, headers


def one_round(srv, url: str, headers: dict[str, str], args, workdir: Path) -> tuple[float, float, float]:
    """requests/s, server µs/request, children µs/request."""
    children = _descendants(srv.pid)
    before = cpu_seconds(srv.pid), sum(cpu_seconds(c) for c in children)
    load = run_wrk(
        url, {"features": ROW}, headers, connections=args.connections, duration=args.duration, workdir=workdir
    )
    after = cpu_seconds(srv.pid), sum(cpu_seconds(c) for c in children)
    if load.errors:
        raise SystemExit(f"{load.errors} failed requests at {url}")
    n = max(1, load.requests)
    return load.rps, (after[0] - before[0]) / n * 1e6, (after[1] - before[1]) / n * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", type=Path, required=True, help="tree A (e.g. a git worktree of the commit before)")
    ap.add_argument("--b", type=Path, default=Path(__file__).resolve().parent.parent, help="tree B (default: this)")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--duration", type=int, default=8, help="seconds of load per round and tree")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--instances", type=int, default=1)
    args = ap.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    workdir = Path(tempfile.mkdtemp(prefix="mh-bench-serving-ab-"))
    servers = []
    try:
        model_pkl = workdir / "model.pkl"
        model_pkl.write_bytes(pickle.dumps(fitted_model()))
        trees = {"A": args.a, "B": args.b}
        targets = {}
        for name, tree in trees.items():
            log(f"{name}: starting {tree} …")
            srv, url, headers = start(tree, workdir / name, model_pkl, args.instances)
            servers.append(srv)
            targets[name] = (srv, url, headers)
            run_wrk(
                url, {"features": ROW}, headers, connections=args.connections, duration=args.warmup, workdir=workdir
            )
        rounds: dict[str, list[tuple[float, float, float]]] = {"A": [], "B": []}
        for r in range(args.rounds):
            order = ("A", "B") if r % 2 == 0 else ("B", "A")
            for name in order:
                figures = one_round(*targets[name], args, workdir)
                rounds[name].append(figures)
                log(
                    f"round {r + 1} {name}: {figures[0]:.0f} req/s, server {figures[1]:.0f} µs, children "
                    f"{figures[2]:.0f} µs per request"
                )
    finally:
        for srv in servers:
            srv.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"\nserving A/B: {args.rounds} rounds × {args.duration} s, {args.connections} connections, wrk")
    print(f"  A = {args.a}\n  B = {args.b}")
    labels = ("requests/s", "server CPU µs/request", "children CPU µs/request")
    print(f"  {'figure':<26}{'A median':>10}{'B median':>10}{'B/A':>8}{'B/A range':>16}")
    for i, label in enumerate(labels):
        a = [x[i] for x in rounds["A"]]
        b = [x[i] for x in rounds["B"]]
        ratios = [y / x for x, y in zip(a, b, strict=True) if x]
        print(
            f"  {label:<26}{statistics.median(a):>10.0f}{statistics.median(b):>10.0f}"
            f"{statistics.median(ratios):>8.3f}{f'{min(ratios):.2f}–{max(ratios):.2f}':>16}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
