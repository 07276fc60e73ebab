"""A workload's own limits (its hardware tier's, ``WorkerSpec.limits``) in the real sandbox: memory over the limit
stops the instance with a reason that says so, the CPU quota is written to its cgroup and holds, GPUs are refused.
Skipped, saying why, where the machine cannot isolate user code or make cgroups."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from modelharbor.compute.base import Limits
from modelharbor.compute.local import LocalExecutor
from modelharbor.compute.sandbox import Sandbox, share_read_only
from tests.compute.helpers import wait_until

MIB = 2**20

WORK = """
import time

class Deployment:
    def __init__(self, base_directory, context):
        pass

    def request(self, data):
        if data == "memory":
            block = bytearray(300 * 1024 * 1024)  # past the tier's 96 MiB: the kernel ends the instance
            return len(block)
        if data == "spin":  # busy for 1.5 s of wall time: how much CPU time did it get?
            end = time.monotonic() + 1.5
            while time.monotonic() < end:
                pass
            return time.process_time()
        if data == "sleep":
            time.sleep(3)
        return "ok"
"""


@pytest.fixture(scope="module")
def sandbox():
    box = Sandbox("auto", limits=Limits(memory=512 * MIB, processes=64, file_size=MIB))
    if not box.isolated:
        pytest.skip(f"this machine cannot isolate user code: {box.reason}")
    if box.cgroups is None:
        pytest.skip("no writable cgroup hierarchy here: a tier's CPU quota needs one (memory falls back to RLIMIT_AS)")
    return box


@pytest.fixture
def executor(sandbox):
    ex = LocalExecutor(backoff=0.05, backoff_max=0.2, stop_grace=2.0, tick=0.05, sandbox=sandbox)
    yield ex
    ex.shutdown()


def _package(make_package) -> Path:
    root = make_package(WORK)
    share_read_only(root)
    return root


def _ask(ex, key, data, timeout=60.0):
    return asyncio.run(ex.request(key, data, timeout=timeout))


def test_over_the_tiers_memory_limit_is_stopped_with_the_reason(executor, make_package, make_spec):
    pkg = _package(make_package)
    executor.deploy(make_spec(pkg, key="mem", tenant="org-b", limits=Limits(memory=96 * MIB, cpus=1.0)))
    assert _ask(executor, "mem", "hello").value == "ok"
    result = _ask(executor, "mem", "memory")
    assert not result.ok
    assert "SIGKILL" in result.error and "memory limit of 96 MiB" in result.error, result.error
    wait_until(
        lambda: any("memory limit of 96 MiB" in x.text for x in executor.logs("mem") if x.stream == "system"),
        what="the exit, with its reason, in the version's system log",
    )
    assert _ask(executor, "mem", "hello").ok  # replaced; the next request is answered


def test_the_tiers_cpu_quota_is_applied(executor, sandbox, make_package, make_spec):
    pkg = _package(make_package)
    executor.deploy(make_spec(pkg, key="cpu", tenant="org-b", limits=Limits(cpus=0.25)))
    assert _ask(executor, "cpu", "hello").ok
    # read it back from the instance's group (the server's side of the cgroup tree)
    cpu_dir = sandbox.cgroups._dirs.get("cpu")
    assert cpu_dir is not None, "the cpu controller is not writable here"
    groups = wait_until(lambda: list(cpu_dir.glob(f"w-*-{os.getpid()}-*")), what="the instance's cgroup")
    assert len(groups) == 1
    assert (groups[0] / "cpu.cfs_quota_us").read_text().strip() == "25000"
    assert (groups[0] / "cpu.cfs_period_us").read_text().strip() == "100000"
    memory_dir = sandbox.cgroups._dirs["memory"] / groups[0].name
    assert int((memory_dir / "memory.limit_in_bytes").read_text()) == 512 * MIB  # the server's, as the tier sets none
    # and it holds: 1.5 s of spinning gets about a quarter of a core
    used = _ask(executor, "cpu", "spin").value
    assert used < 0.6, f"the worker used {used:.2f} s of CPU in 1.5 s under a 0.25-core quota"


def test_a_tier_never_lifts_the_servers_ceiling(executor, sandbox, make_package, make_spec):
    pkg = _package(make_package)
    executor.deploy(make_spec(pkg, key="big", tenant="org-b", limits=Limits(memory=64 * 1024 * MIB, cpus=64)))
    assert _ask(executor, "big", "hello").ok
    groups = list(sandbox.cgroups._dirs["memory"].glob(f"w-*-{os.getpid()}-*"))
    assert len(groups) == 1
    assert int((groups[0] / "memory.limit_in_bytes").read_text()) == 512 * MIB  # the server's ceiling


def test_a_tier_with_gpus_cannot_run_on_the_local_executor(executor, make_package, make_spec):
    pkg = _package(make_package)
    executor.deploy(make_spec(pkg, key="gpu", tenant="org-b", minimum_instances=1, limits=Limits(gpus=1)))
    status = wait_until(lambda: (s := executor.status("gpu")).state == "failed" and s, timeout=20, what="failed")
    assert "GPU" in status.error and "tier without GPUs" in status.error, status.error


def test_a_start_over_the_memory_limit_fails_saying_so(executor, make_package, make_spec):
    root = make_package(
        "class Deployment:\n    def __init__(self, b, c):\n        self.block = bytearray(300 * 1024 * 1024)\n"
        "    def request(self, d):\n        return 1\n"
    )
    share_read_only(root)
    executor.deploy(make_spec(root, key="fat", tenant="org-b", minimum_instances=1, limits=Limits(memory=96 * MIB)))
    status = wait_until(lambda: (s := executor.status("fat")).state == "failed" and s, timeout=60, what="failed")
    assert "before it was ready" in status.error and "memory limit of 96 MiB" in status.error, status.error
