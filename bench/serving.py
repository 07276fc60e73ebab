"""Serving benchmark: one scikit-learn model, three servers, the same load, measured side by side.

    .venv/bin/python bench/serving.py [--duration 20] [--connections 16] [--mlflow-bin PATH] [--quick]

A LogisticRegression fitted on iris is served by
  (a) ``mlflow models serve --env-manager local`` (mlflow 3.17.2 in bench/.mlflow-venv, created once — 3.18 does
      not install here; or ``--mlflow-bin``),
  (b) a ModelHarbor deployment, asked through the UbiOps route ``POST /v2/projects/…/deployments/…/requests``
      with an API key (so auth, routing, input/output checks and the worker round trip are all included), and
  (c) a bare Starlette app holding the same model in-process (the floor any Python server stands on).
Each gets single-row JSON requests from ``wrk`` (Debian's package; ``apt-get install wrk``) with N connections
for D seconds after a short warm-up. The table prints requests/s, p50/p99 and the ratios; targets from issue 5:
ModelHarbor ≥ 6× MLflow's throughput and p99 ≤ 20 ms at 16 connections.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx
from registry import ADMIN_KEY, GroupServer, mlflow_executable, start_modelharbor
from upload import PySpy, _descendants, cpu_seconds, free_port, log, summarize_profile

HERE = Path(__file__).resolve().parent
ROW = [5.1, 3.5, 1.4, 0.2]
TARGET_RATIO = 6.0
TARGET_P99_MS = 20.0

DEPLOYMENT_PY = """
import os
import pickle


class Deployment:
    def __init__(self, base_directory, context):
        with open(os.path.join(base_directory, "model.pkl"), "rb") as f:
            self.model = pickle.load(f)

    def request(self, data):
        return {"prediction": int(self.model.predict([data["features"]])[0])}
"""

STARLETTE_APP = """
import os
import pickle

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

with open(os.environ["BENCH_MODEL"], "rb") as f:
    MODEL = pickle.load(f)


async def predict(request: Request):
    data = await request.json()
    return JSONResponse({"prediction": int(MODEL.predict([data["features"]])[0])})


app = Starlette(routes=[Route("/predict", predict, methods=["POST"])])
"""

SAVE_MLFLOW_MODEL = """
import sys
import mlflow.sklearn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

X, y = load_iris(return_X_y=True)
mlflow.sklearn.save_model(LogisticRegression(max_iter=500).fit(X, y), sys.argv[1])
"""


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    cpu_us: tuple[float, float] = (0.0, 0.0)  # CPU per request: (the server process, its child processes)


def fitted_model():
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=500).fit(X, y)


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip()).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(url: str, body: dict, headers: dict[str, str], *, connections: int, duration: int, workdir: Path) -> Load:
    script = workdir / f"wrk-{free_port()}.lua"
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(json.dumps(body))}"]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    lines += [
        "local bad = 0",
        "response = function(status, headers, body) if status ~= 200 or not string.find(body, 'prediction') "
        "then bad = bad + 1 end end",
        "done = function(summary, latency, requests) io.write(string.format('BAD %d\\n', bad)) end",
    ]
    script.write_text("\n".join(lines) + "\n")
    threads = max(1, min(2, connections))
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = int(non2xx.group(1)) if non2xx else 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if sock:
        errors += sum(int(x) for x in sock.groups())
    return Load(rps, p50, p99, errors, total)


def _cpu(pid: int) -> tuple[float, float]:
    """CPU seconds so far of ``pid`` and of all its descendants (workers, uvicorn's children)."""
    return cpu_seconds(pid), sum(cpu_seconds(child) for child in _descendants(pid))


def measure(name: str, url: str, body: dict, headers: dict[str, str], args, workdir: Path, pid: int) -> Load:
    log(f"{name}: warm-up {args.warmup} s, then {args.connections} connections for {args.duration} s …")
    run_wrk(url, body, headers, connections=args.connections, duration=args.warmup, workdir=workdir)
    children = _descendants(pid)
    before = cpu_seconds(pid), sum(cpu_seconds(c) for c in children)
    profiles = []
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"\W+", "-", name.lower())
        profiles = [(f"{name} (pid {p})", args.profile / f"{slug}-{p}.txt") for p in [pid, *children]]
    with contextlib.ExitStack() as stack:
        for (_, out), p in zip(profiles, [pid, *children], strict=False):
            stack.enter_context(PySpy(args.py_spy, p, out))
        load = run_wrk(url, body, headers, connections=args.connections, duration=args.duration, workdir=workdir)
    after = cpu_seconds(pid), sum(cpu_seconds(c) for c in children)
    load.cpu_us = tuple((b - a) / max(1, load.requests) * 1e6 for a, b in zip(before, after, strict=True))
    log(
        f"{name}: {load.rps:.0f} requests/s, p50 {load.p50_ms:.2f} ms, p99 {load.p99_ms:.2f} ms, errors {load.errors}; "
        f"CPU per request: server {load.cpu_us[0]:.0f} µs, its child processes {load.cpu_us[1]:.0f} µs"
    )
    for title, out in profiles:
        print(f"{title}:\n{summarize_profile(out)}")
    return load


def check_once(url: str, body: dict, headers: dict[str, str]) -> None:
    r = httpx.post(url, json=body, headers=headers, timeout=60)
    if r.status_code != 200 or "prediction" not in r.text:
        raise SystemExit(f"{url} answered {r.status_code}: {r.text[:500]}")


def wait_http(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer in {timeout:.0f} s")


class Proc:
    def __init__(self, cmd: list[str], cwd: Path, logfile: Path, env: dict[str, str] | None = None):
        self.log = open(logfile, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def deploy_iris(base: str, workdir: Path, model_pkl: Path, instances: int = 1) -> tuple[str, dict[str, str]]:
    """Create project ``bench`` and deployment ``iris`` (the pickled model) on the ModelHarbor at ``base`` through
    the UbiOps routes, wait for its build, check one request; the request URL and headers to load it with."""
    api = httpx.Client(base_url=f"{base}/v2", headers={"Authorization": f"Token {ADMIN_KEY}"}, timeout=60)
    api.post("/projects", json={"name": "bench", "organization_name": "default"}).raise_for_status()
    api.post(
        "/projects/bench/deployments",
        json={
            "name": "iris",
            "input_type": "structured",
            "output_type": "structured",
            "input_fields": [{"name": "features", "data_type": "array_double"}],
            "output_fields": [{"name": "prediction", "data_type": "int"}],
        },
    ).raise_for_status()
    api.post(
        "/projects/bench/deployments/iris/versions",
        json={
            "version": "v1",
            "minimum_instances": 1,
            "maximum_instances": instances,
            "request_retention_mode": "none",
            "maximum_idle_time": 600,
        },
    ).raise_for_status()
    pkg = workdir / "iris.zip"
    with zipfile.ZipFile(pkg, "w") as zf:
        zf.writestr("deployment_package/deployment.py", DEPLOYMENT_PY)
        zf.write(model_pkl, "deployment_package/model.pkl")
    with open(pkg, "rb") as f:
        up = api.post(
            "/projects/bench/deployments/iris/versions/v1/revisions",
            files={"file": ("iris.zip", f, "application/zip")},
        )
    up.raise_for_status()
    revision = up.json()["revision"]
    deadline = time.monotonic() + 300
    while True:
        status = api.get(f"/projects/bench/deployments/iris/versions/v1/revisions/{revision}").json()
        if status["status"] in ("success", "failed"):
            break
        if time.monotonic() > deadline:
            raise SystemExit("the ModelHarbor build took longer than 300 s")
        time.sleep(0.3)
    if status["status"] != "success":
        raise SystemExit(f"the ModelHarbor build failed: {status['error_message']}")
    url = f"{base}/v2/projects/bench/deployments/iris/requests"
    headers = {"Content-Type": "application/json", "Authorization": f"Token {ADMIN_KEY}"}
    check_once(url, {"features": ROW}, headers)
    return url, headers


def bench_modelharbor(args, workdir: Path, model_pkl: Path, extra_env: tuple[str, ...] = ()) -> Load:
    workdir.mkdir(parents=True, exist_ok=True)
    srv: GroupServer = start_modelharbor(workdir, list(extra_env))
    try:
        srv.wait_healthy()
        url, headers = deploy_iris(srv.base, workdir, model_pkl, args.instances)
        return measure("ModelHarbor", url, {"features": ROW}, headers, args, workdir, srv.pid)
    finally:
        srv.stop()


def bench_mlflow(args, workdir: Path) -> Load:
    exe = mlflow_executable(args)
    py = exe.parent / "python"
    model_dir = workdir / "mlflow-model"
    subprocess.run([str(py), "-c", SAVE_MLFLOW_MODEL, str(model_dir)], check=True, timeout=300)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PATH"] = f"{exe.parent}{os.pathsep}{env.get('PATH', '')}"  # mlflow runs `uvicorn` from its own venv
    proc = Proc(
        [
            str(exe),
            "models",
            "serve",
            "-m",
            str(model_dir),
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        workdir,
        workdir / "mlflow-serve.log",
        env,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/ping", timeout=180)
        url = base + "/invocations"
        check = httpx.post(url, json={"inputs": [ROW]}, timeout=60)
        if check.status_code != 200:
            raise SystemExit(f"mlflow answered {check.status_code}: {check.text[:300]}")
        return measure(
            "MLflow", url, {"inputs": [ROW]}, {"Content-Type": "application/json"}, args, workdir, proc.proc.pid
        )
    finally:
        proc.stop()


def bench_starlette(args, workdir: Path, model_pkl: Path) -> Load:
    app = workdir / "bare_app.py"
    app.write_text(STARLETTE_APP)
    port = free_port()
    proc = Proc(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bare_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        workdir,
        workdir / "starlette.log",
        {**os.environ, "PYTHONPATH": str(workdir), "BENCH_MODEL": str(model_pkl)},
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/")
        url = f"http://127.0.0.1:{port}/predict"
        check_once(url, {"features": ROW}, {})
        return measure(
            "bare Starlette", url, {"features": ROW}, {"Content-Type": "application/json"}, args, workdir, proc.proc.pid
        )
    finally:
        proc.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=20, help="seconds of load per server (default 20)")
    ap.add_argument("--warmup", type=int, default=3, help="seconds of warm-up load per server (default 3)")
    ap.add_argument("--connections", type=int, default=16, help="concurrent connections (default 16)")
    ap.add_argument("--instances", type=int, default=1, help="ModelHarbor maximum instances (default 1)")
    ap.add_argument("--mlflow-bin", help="an existing mlflow executable (default: bench/.mlflow-venv)")
    ap.add_argument("--skip-mlflow", action="store_true", help="measure ModelHarbor and Starlette only")
    ap.add_argument("--quick", action="store_true", help="3 s runs, for a smoke test")
    ap.add_argument(
        "--compare-unisolated",
        action="store_true",
        help="also measure ModelHarbor with its workers not sandboxed (MODELHARBOR_SANDBOX=off), side by side",
    )
    ap.add_argument("--profile", type=Path, help="py-spy each server process during its run; stacks go to this folder")
    ap.add_argument("--py-spy", default=shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy")))
    args = ap.parse_args(argv)
    if args.quick:
        args.duration, args.warmup = 3, 1
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    workdir = Path(tempfile.mkdtemp(prefix="mh-bench-serving-"))
    try:
        model_pkl = workdir / "model.pkl"
        model_pkl.write_bytes(pickle.dumps(fitted_model()))
        results = {"ModelHarbor": bench_modelharbor(args, workdir / "isolated", model_pkl)}
        if args.compare_unisolated:
            unisolated = ("MODELHARBOR_SANDBOX=off", "MODELHARBOR_SINGLE_TENANT=true")
            results["MH not isolated"] = bench_modelharbor(args, workdir / "plain", model_pkl, unisolated)
        results["bare Starlette"] = bench_starlette(args, workdir, model_pkl)
        if not args.skip_mlflow:
            results["MLflow"] = bench_mlflow(args, workdir)
        report(args, results)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def report(args, results: dict[str, Load]) -> None:
    print()
    print(
        f"serving one LogisticRegression (iris), single-row JSON, {args.connections} connections, "
        f"{args.duration} s each, wrk"
    )
    print(f"{'server':<16}{'requests/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}{'CPU µs/request':>22}")
    for name, r in results.items():
        cpu = f"{r.cpu_us[0]:.0f} + {r.cpu_us[1]:.0f} children"
        print(f"{name:<16}{r.rps:>12.0f}{r.p50_ms:>10.2f}{r.p99_ms:>10.2f}{r.errors:>8}{cpu:>22}")
    mh = results["ModelHarbor"]
    bare = results["bare Starlette"]
    print(f"ModelHarbor / bare Starlette throughput: {mh.rps / bare.rps:.2f}×")
    if "MH not isolated" in results:
        print(f"ModelHarbor isolated / not isolated throughput: {mh.rps / results['MH not isolated'].rps:.3f}×")
    if "MLflow" in results:
        ratio = mh.rps / results["MLflow"].rps
        print(
            f"ModelHarbor / MLflow throughput: {ratio:.2f}×  (target ≥ {TARGET_RATIO:.0f}×: "
            f"{'met' if ratio >= TARGET_RATIO else 'NOT met'})"
        )
    print(
        f"ModelHarbor p99: {mh.p99_ms:.2f} ms  (target ≤ {TARGET_P99_MS:.0f} ms: "
        f"{'met' if mh.p99_ms <= TARGET_P99_MS else 'NOT met'})"
    )


if __name__ == "__main__":
    sys.exit(main())
