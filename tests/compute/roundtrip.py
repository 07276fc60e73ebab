"""Raw executor round trip: requests/s and latency with 16 concurrent callers (not a test; run it by hand).

    .venv/bin/python tests/compute/roundtrip.py [--seconds 3] [--uvloop]

Also CPU time per request, which depends less on what else runs on the machine. Two packages: a trivial ``request()`` and a scikit-learn LogisticRegression predict; each with one and with two
instances. Everything (callers, executor, workers) shares this machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil

from modelharbor.compute.base import Environment, WorkerSpec
from modelharbor.compute.local import LocalExecutor

TRIVIAL = """
class Deployment:
    def __init__(self, base_directory, context):
        pass
    def request(self, data):
        return {"echo": data}
"""

SKLEARN = """
import numpy as np
from sklearn.linear_model import LogisticRegression

class Deployment:
    def __init__(self, base_directory, context):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(500, 4))
        self.model = LogisticRegression().fit(x, (x.sum(axis=1) > 0).astype(int))
    def request(self, data):
        return {"prediction": int(self.model.predict(np.asarray([data["features"]]))[0])}
"""


async def measure(executor: LocalExecutor, key: str, data, seconds: float, concurrency: int) -> dict:
    latencies: list[float] = []
    stop = time.monotonic() + seconds

    async def caller():
        while time.monotonic() < stop:
            t = time.perf_counter()
            result = await executor.request(key, data)
            latencies.append(time.perf_counter() - t)
            assert result.ok, result

    for _ in range(200):  # warm up
        await executor.request(key, data)
    workers = [psutil.Process(i.pid) for i in executor.status(key).instances]
    worker_cpu = sum(sum(w.cpu_times()[:2]) for w in workers)
    cpu = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*[caller() for _ in range(concurrency)])
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    worker_cpu = sum(sum(w.cpu_times()[:2]) for w in workers) - worker_cpu
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "cpu_us": cpu / len(latencies) * 1e6,
        "worker_cpu_us": worker_cpu / len(latencies) * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--uvloop", action="store_true")
    args = parser.parse_args()
    env = Environment(key="server", python=Path(sys.executable), base="python3-11")
    executor = LocalExecutor()
    with tempfile.TemporaryDirectory() as tmp:
        cases = []
        for name, code, data in (
            ("trivial", TRIVIAL, {"x": 1}),
            ("sklearn", SKLEARN, {"features": [0.1, -0.2, 0.3, 0.4]}),
        ):
            package = Path(tmp) / name
            package.mkdir()
            (package / "deployment.py").write_text(textwrap.dedent(code))
            for instances in (1, 2):
                key = f"{name}-{instances}"
                executor.deploy(
                    WorkerSpec(
                        key=key,
                        revision="r",
                        package_dir=package,
                        environment=env,
                        minimum_instances=instances,
                        maximum_instances=instances,
                    )
                )
                cases.append((key, data))

        async def run_all():
            for key, data in cases:
                while executor.status(key).state != "running" or any(
                    i.state == "starting" for i in executor.status(key).instances
                ):
                    await asyncio.sleep(0.05)
                numbers = await measure(executor, key, data, args.seconds, args.concurrency)
                print(
                    f"{key:10s} {numbers['rps']:7.0f} req/s  p50 {numbers['p50_ms']:6.2f} ms  "
                    f"p99 {numbers['p99_ms']:6.2f} ms  CPU per request: callers+executor {numbers['cpu_us']:4.0f} us, "
                    f"worker {numbers['worker_cpu_us']:4.0f} us"
                )

        loop = "uvloop" if args.uvloop else "asyncio"
        print(f"{args.concurrency} concurrent callers, {loop} loop, {args.seconds:g} s per case")
        if args.uvloop:
            import uvloop

            uvloop.run(run_all())
        else:
            asyncio.run(run_all())
    executor.shutdown()


if __name__ == "__main__":
    main()
