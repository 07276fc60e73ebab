"""LocalExecutor with real worker processes: answers, errors, crashes, timeouts, scaling, logs, cleanup."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from modelharbor.compute.base import Environment
from modelharbor.compute.local import LocalExecutor
from tests.compute.helpers import ECHO, SERVER_ENV, live_children, pid_alive, wait_until


def run(coro):
    return asyncio.run(coro)


def ready_pids(executor, key="v1") -> set[int]:
    return {i.pid for i in executor.status(key).instances if i.state in ("ready", "busy")}


def test_request_answers_with_base_directory_context_and_cwd(executor, make_package, make_spec):
    package = make_package(ECHO)
    executor.deploy(make_spec(package, context={"deployment": "d", "version": "v1"}))
    result = run(executor.request("v1", {"x": 1}))
    assert result.ok, result
    assert result.value["echo"] == {"x": 1}
    assert result.value["base"] == str(package)
    assert result.value["cwd"] == str(package)
    assert result.value["context"] == {"deployment": "d", "version": "v1"}
    plain = run(executor.request("v1", "a plain string"))
    assert plain.ok and plain.value["echo"] == "a plain string"
    assert plain.value["pid"] == result.value["pid"]  # one persistent instance
    status = executor.status("v1")
    assert status.state == "running"
    assert [i.requests for i in status.instances] == [2]


def test_batch_item_by_item_and_with_requests_method(executor, make_package, make_spec):
    executor.deploy(make_spec(make_package(ECHO)))
    result = run(executor.request("v1", [{"a": 1}, {"fail": "x"}, "s"]))
    assert not result.ok
    assert result.error == "item 1: ValueError: bad input: x"
    assert [r.ok for r in result.items] == [True, False, True]
    assert result.value[0]["echo"] == {"a": 1} and result.value[1] is None and result.value[2]["echo"] == "s"

    batched = make_package(
        """
        class Deployment:
            def __init__(self, base_directory, context):
                self.calls = 0
            def request(self, data):
                return "single"
            def requests(self, items):
                self.calls += 1
                return [{"double": i * 2, "calls": self.calls} for i in items]
        """
    )
    executor.deploy(make_spec(batched, key="v2"))
    result = run(executor.request("v2", [1, 2, 3]))
    assert result.ok, result
    assert result.value == [{"double": 2, "calls": 1}, {"double": 4, "calls": 1}, {"double": 6, "calls": 1}]
    assert len(result.items) == 3


def test_request_raising_is_an_error_and_the_worker_keeps_serving(executor, make_package, make_spec):
    executor.deploy(make_spec(make_package(ECHO)))
    first = run(executor.request("v1", {"n": 1}))
    failed = run(executor.request("v1", {"fail": "boom"}))
    assert not failed.ok
    assert failed.error == "ValueError: bad input: boom"
    assert "deployment.py" in failed.traceback and "worker_main" not in failed.traceback
    after = run(executor.request("v1", {"n": 2}))
    assert after.ok and after.value["pid"] == first.value["pid"]
    assert executor.status("v1").restarts == 0
    # the worker's stderr is read by a thread of its own: the line may land a moment after the answer
    wait_until(
        lambda: any("ValueError: bad input: boom" in line.text for line in executor.logs("v1")), what="the error logged"
    )


def test_results_that_are_not_json_are_errors_numpy_values_are_converted(executor, make_package, make_spec):
    package = make_package(
        """
        import numpy as np
        class Deployment:
            def __init__(self, base_directory, context):
                pass
            def request(self, data):
                if data == "object":
                    return object()
                return {"array": np.arange(3), "scalar": np.float64(1.5)}
        """
    )
    executor.deploy(make_spec(package))
    bad = run(executor.request("v1", "object"))
    assert not bad.ok and "not JSON-serialisable" in bad.error
    good = run(executor.request("v1", "numpy"))
    assert good.ok and good.value == {"array": [0, 1, 2], "scalar": 1.5}


def test_request_context_is_passed_to_a_two_argument_request(executor, make_package, make_spec):
    package = make_package(
        """
        class Deployment:
            def __init__(self, base_directory, context):
                pass
            def request(self, data, context):
                return {"data": data, "context": context}
        """
    )
    executor.deploy(make_spec(package))
    result = run(executor.request("v1", {"a": 1}, context={"id": "req-1"}))
    assert result.value == {"data": {"a": 1}, "context": {"id": "req-1"}}
    assert run(executor.request("v1", "x")).value == {"data": "x", "context": {}}


def test_unknown_key_and_unserialisable_request(executor, make_package, make_spec):
    result = run(executor.request("nope", {}))
    assert not result.ok and "not deployed" in result.error
    executor.deploy(make_spec(make_package(ECHO)))
    result = run(executor.request("v1", {"x": object()}))
    assert not result.ok and "not JSON-serialisable" in result.error


BROKEN = {
    "syntax error": ("class Deployment(:\n    pass\n", "SyntaxError"),
    "no Deployment class": ("class Model:\n    pass\n", "deployment.py defines no class Deployment"),
    "__init__ raises": (
        "class Deployment:\n    def __init__(self, base_directory, context):\n        raise RuntimeError('no model file')\n",
        "RuntimeError: no model file",
    ),
    "import error": ("import a_module_that_does_not_exist\n", "ModuleNotFoundError"),
    "no deployment.py": (None, "the package has no deployment.py"),
    "exits in __init__": (
        "import os\nclass Deployment:\n    def __init__(self, b, c):\n        print('leaving'); os._exit(7)\n",
        "exit code 7",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_startup_failure_is_reported_by_check(executor, make_package, make_spec, case):
    code, expected = BROKEN[case]
    status = executor.check(make_spec(make_package(code)), timeout=30)
    assert status.state == "failed"
    assert expected in status.error
    assert status.instances == ()
    if case == "__init__ raises":
        assert "deployment.py" in status.error  # the traceback tail names the user's file
        assert "RuntimeError: no model file" in status.log
    if case == "exits in __init__":
        assert "leaving" in status.error and "leaving" in status.log


def test_check_of_a_good_package_starts_and_stops_it(executor, make_package, make_spec):
    status = executor.check(make_spec(make_package(ECHO)), timeout=30)
    assert status.state == "stopped" and status.error is None
    assert "initialised with" in status.log
    assert executor.status("v1").state == "stopped"  # a check is not a deployment


def test_check_times_out(executor, make_package, make_spec):
    package = make_package("import time\nclass Deployment:\n    def __init__(self, b, c):\n        time.sleep(60)\n")
    started = time.monotonic()
    status = executor.check(make_spec(package), timeout=0.5)
    assert time.monotonic() - started < 5
    assert status.state == "failed" and "did not start within" in status.error


def test_repeated_startup_failures_mark_the_version_failed_until_a_new_spec(executor, make_package, make_spec):
    broken = make_package("raise RuntimeError('broken package')\n")
    spec = make_spec(broken, minimum_instances=1)
    executor.deploy(spec)
    status = wait_until(lambda: executor.status("v1").state == "failed" and executor.status("v1"), what="failed")
    assert status.restarts == 3
    assert "RuntimeError: broken package" in status.error
    assert status.instances == ()
    result = run(executor.request("v1", {}))
    assert not result.ok and "broken package" in result.error
    time.sleep(0.3)  # no more attempts while failed
    assert executor.status("v1").restarts == 3
    executor.deploy(spec)  # the same spec changes nothing
    assert executor.status("v1").state == "failed"
    executor.deploy(make_spec(make_package(ECHO), revision="r2", minimum_instances=1))
    wait_until(lambda: executor.status("v1").state == "running", what="running after a new spec")
    assert run(executor.request("v1", {"ok": 1})).ok


def test_waiting_requests_get_the_startup_error(executor, make_package, make_spec):
    executor.deploy(make_spec(make_package("raise RuntimeError('cannot load')\n")))

    async def many():
        return await asyncio.gather(*[executor.request("v1", {}) for _ in range(3)])

    results = run(many())
    assert all(not r.ok and "cannot load" in r.error for r in results)
    assert executor.status("v1").state == "failed"


def test_killed_instance_is_detected_and_replaced(executor, make_package, make_spec):
    executor.deploy(make_spec(make_package(ECHO), minimum_instances=1))
    (pid,) = wait_until(lambda: ready_pids(executor), what="an instance")
    os.kill(pid, signal.SIGKILL)
    new = wait_until(lambda: ready_pids(executor) - {pid}, what="a replacement")
    status = executor.status("v1")
    assert status.restarts == 1 and len(status.instances) == 1
    result = run(executor.request("v1", {}))
    assert result.ok and result.value["pid"] in new
    assert any("killed by SIGKILL" in line.text for line in executor.logs("v1"))


def test_instance_killed_during_a_request(executor, make_package, make_spec):
    executor.deploy(make_spec(make_package(ECHO)))
    pid = run(executor.request("v1", {})).value["pid"]

    async def kill_soon():
        await asyncio.sleep(0.3)
        os.kill(pid, signal.SIGKILL)

    async def both():
        return (await asyncio.gather(executor.request("v1", {"sleep": 10}), kill_soon()))[0]

    result = run(both())
    assert not result.ok and "exited while handling the request (killed by SIGKILL)" in result.error
    after = run(executor.request("v1", {}))
    assert after.ok and after.value["pid"] != pid
    wait_until(lambda: executor.status("v1").restarts == 1, what="the restart counted")


def test_request_timeout_kills_and_replaces_the_instance(executor, make_package, make_spec):
    executor.deploy(make_spec(make_package(ECHO), request_timeout=0.5))
    pid = run(executor.request("v1", {})).value["pid"]
    started = time.monotonic()
    result = run(executor.request("v1", {"sleep": 30}))
    assert time.monotonic() - started < 3
    assert not result.ok and "timed out after 0.5 s" in result.error
    wait_until(lambda: not pid_alive(pid), what="the timed-out instance to die")
    fresh = wait_until(lambda: ready_pids(executor) - {pid}, what="a fresh instance")
    assert executor.status("v1").restarts == 1
    after = run(executor.request("v1", {}))
    assert after.ok and after.value["pid"] in fresh
    # a per-request timeout shorter than the spec's
    short = run(executor.request("v1", {"sleep": 30}, timeout=0.3))
    assert not short.ok and "timed out after 0.3 s" in short.error


def test_scales_up_to_the_maximum_under_load_and_down_after_idle_time(executor, make_package, make_spec):
    executor.deploy(make_spec(make_package(ECHO), minimum_instances=1, maximum_instances=3, maximum_idle_time=0.5))
    wait_until(lambda: ready_pids(executor), what="the minimum instance")

    async def load():
        return await asyncio.gather(*[executor.request("v1", {"sleep": 0.4}) for _ in range(9)])

    results = run(load())
    assert all(r.ok for r in results)
    pids = {r.value["pid"] for r in results}
    assert len(pids) == 3  # never more than the maximum
    assert len(executor.status("v1").instances) == 3
    wait_until(lambda: len(executor.status("v1").instances) == 1, timeout=10, what="scale-down to the minimum")
    assert executor.status("v1").restarts == 0
    assert any("idle for" in line.text for line in executor.logs("v1"))


def test_scale_to_zero_and_back(executor, make_package, make_spec):
    executor.deploy(make_spec(make_package(ECHO), maximum_idle_time=0.2))
    assert executor.status("v1").instances == ()
    assert run(executor.request("v1", {})).ok
    wait_until(lambda: executor.status("v1").instances == (), what="scale to zero")
    assert executor.status("v1").state == "stopped"
    assert run(executor.request("v1", {})).ok


def test_bounded_queue_answers_queue_full(executor, make_package, make_spec):
    executor.deploy(make_spec(make_package(ECHO), minimum_instances=1, maximum_queue=2))
    wait_until(lambda: ready_pids(executor), what="an instance")

    async def load():
        tasks = [asyncio.create_task(executor.request("v1", {"sleep": 0.3}))]
        await asyncio.sleep(0.05)  # that one is busy now
        tasks += [asyncio.create_task(executor.request("v1", {"sleep": 0.01})) for _ in range(4)]
        await asyncio.sleep(0.05)
        queued = executor.status("v1").queued
        return queued, await asyncio.gather(*tasks)

    queued, results = run(load())
    assert queued == 2
    assert sum(r.ok for r in results) == 3
    full = [r for r in results if not r.ok]
    assert len(full) == 2 and all(r.error.startswith("queue full") for r in full)


def test_queue_timeout_does_not_kill_the_busy_instance(executor, make_package, make_spec):
    executor.deploy(make_spec(make_package(ECHO), minimum_instances=1))
    pid = run(executor.request("v1", {})).value["pid"]

    async def load():
        slow = asyncio.create_task(executor.request("v1", {"sleep": 0.5}))
        await asyncio.sleep(0.05)
        waiting = await executor.request("v1", {}, timeout=0.1)
        return waiting, await slow

    waiting, slow = run(load())
    assert not waiting.ok and "in the queue" in waiting.error
    assert slow.ok and slow.value["pid"] == pid
    assert executor.status("v1").restarts == 0


def test_env_vars_reach_user_code_and_server_variables_do_not(executor, make_package, make_spec, monkeypatch):
    monkeypatch.setenv("MODELHARBOR_DATABASE_URL", "postgresql://server-secret")
    secret = "s3cr3t-value-never-logged"
    executor.deploy(make_spec(make_package(ECHO), env_vars={"API_TOKEN": secret, "MODE": "test"}))
    result = run(executor.request("v1", {"env": ["API_TOKEN", "MODE", "MODELHARBOR_DATABASE_URL", "PATH"]}))
    assert result.value["API_TOKEN"] == secret and result.value["MODE"] == "test"
    assert result.value["MODELHARBOR_DATABASE_URL"] is None
    assert result.value["PATH"]
    assert not any(secret in line.text for line in executor.logs("v1"))


def test_stdout_and_stderr_are_captured_in_bounded_logs(make_package, make_spec):
    executor = LocalExecutor(log_bytes=4096, tick=0.05)
    try:
        executor.deploy(make_spec(make_package(ECHO)))
        assert run(executor.request("v1", {"print": "hello from user code"})).ok
        lines = wait_until(
            lambda: [x for x in executor.logs("v1") if "hello from user code" in x.text and x.stream == "stderr"],
            what="stderr in the logs",
        )
        logs = executor.logs("v1")
        assert any(x.stream == "stdout" and x.text == "hello from user code" for x in logs)
        assert any(x.stream == "stdout" and x.text.startswith("initialised with") for x in logs)
        assert lines[0].pid == run(executor.request("v1", {})).value["pid"]
        since = logs[-1].time
        for n in range(200):
            run(executor.request("v1", {"print": f"line {n:04d} " + "x" * 40}))
        logs = wait_until(
            lambda: (
                [x for x in executor.logs("v1") if x.text.startswith("to stderr: line 0199")] and executor.logs("v1")
            ),
            what="the last line",
        )
        assert sum(len(x.text) + 48 for x in logs) <= 4096 + 200
        assert not any("line 0000" in x.text for x in logs)  # the oldest lines were dropped
        assert all(x.time > since for x in executor.logs("v1", since=since))
    finally:
        executor.shutdown()


def test_new_revision_drains_old_instances(executor, make_package, make_spec):
    old = make_package(ECHO)
    executor.deploy(make_spec(old, minimum_instances=1))
    old_pid = run(executor.request("v1", {})).value["pid"]

    async def rollout():
        slow = asyncio.create_task(executor.request("v1", {"sleep": 0.6}))
        await asyncio.sleep(0.2)
        await asyncio.to_thread(executor.deploy, make_spec(make_package(ECHO), revision="r2", minimum_instances=1))
        fresh = await executor.request("v1", {})
        return await slow, fresh

    slow, fresh = run(rollout())
    assert slow.ok and slow.value["pid"] == old_pid  # the running request finished on the old revision
    assert fresh.ok and fresh.value["pid"] != old_pid
    wait_until(lambda: not pid_alive(old_pid), what="the old instance to stop")
    wait_until(lambda: [i.revision for i in executor.status("v1").instances] == ["r2"], what="only r2 left")
    assert executor.status("v1").restarts == 0


def test_scaling_change_keeps_running_instances(executor, make_package, make_spec):
    package = make_package(ECHO)
    executor.deploy(make_spec(package, minimum_instances=1))
    pid = run(executor.request("v1", {})).value["pid"]
    executor.deploy(make_spec(package, minimum_instances=2, maximum_instances=2))
    wait_until(lambda: len(ready_pids(executor)) == 2, what="the second instance")
    assert pid in ready_pids(executor)


def test_cancelled_request_leaves_the_instance_usable(executor, make_package, make_spec):
    executor.deploy(make_spec(make_package(ECHO), minimum_instances=1))
    pid = run(executor.request("v1", {})).value["pid"]

    async def cancel():
        task = asyncio.create_task(executor.request("v1", {"sleep": 0.3}))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return await executor.request("v1", {})  # waits until the dropped answer arrived

    after = run(cancel())
    assert after.ok and after.value["pid"] == pid
    assert executor.status("v1").restarts == 0


def test_requests_from_several_threads_and_loops(executor, make_package, make_spec):
    executor.deploy(make_spec(make_package(ECHO), maximum_instances=2))
    results, errors = [], []

    def client():
        async def go():
            return await asyncio.gather(*[executor.request("v1", {"i": i}) for i in range(50)])

        try:
            results.extend(run(go()))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert len(results) == 200 and all(r.ok for r in results)


def test_undeploy_and_shutdown_leave_no_processes(make_package, make_spec, tmp_path):
    marker = tmp_path / "grandchild.pid"
    package = make_package(
        f"""
        import subprocess, sys
        class Deployment:
            def __init__(self, base_directory, context):
                self.child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
                open({str(marker)!r}, "w").write(str(self.child.pid))
            def request(self, data):
                return "ok"
        """
    )
    before = {p.pid for p in live_children()}
    executor = LocalExecutor(stop_grace=1.0, tick=0.05)
    try:
        executor.deploy(make_spec(package, minimum_instances=2, maximum_instances=2))
        executor.deploy(make_spec(make_package(ECHO), key="v2", minimum_instances=1))
        wait_until(lambda: len(ready_pids(executor)) == 2 and ready_pids(executor, "v2"), what="instances")
        assert run(executor.request("v1", {})).ok
        grandchild = int(marker.read_text())
        assert pid_alive(grandchild)
        executor.undeploy("v1")
        wait_until(lambda: not pid_alive(grandchild), timeout=2, what="the grandchild to die (SIGKILL sent)")
        assert executor.status("v1").state == "stopped"
        remaining = {p.pid for p in live_children()} - before
        assert remaining == ready_pids(executor, "v2")
        assert run(executor.request("v1", {})).error == "deployment version 'v1' is not deployed"
    finally:
        executor.shutdown()
    assert {p.pid for p in live_children()} - before == set()
    executor.shutdown()  # twice is fine
    with pytest.raises(RuntimeError):
        executor.deploy(make_spec(package, key="v3"))


def test_worker_runs_in_an_interpreter_without_modelharbor(executor, make_package, make_spec):
    base = Path(getattr(sys, "_base_executable", sys.executable))  # the installation the server's venv came from
    environment = Environment(key="base", python=base, base="python3-11")
    package = make_package(
        """
        import importlib.util, sys
        class Deployment:
            def __init__(self, base_directory, context):
                pass
            def request(self, data):
                return {"prefix": sys.prefix, "modelharbor": importlib.util.find_spec("modelharbor") is not None,
                        "shadowed": importlib.util.find_spec("local") is not None}
        """,
        files={"libraries/helper_lib.py": "VALUE = 42\n"},
    )
    executor.deploy(make_spec(package, environment=environment))
    result = run(executor.request("v1", {}))
    assert result.ok, result
    assert result.value == {"prefix": sys.base_prefix, "modelharbor": False, "shadowed": False}


def test_libraries_directory_is_importable(executor, make_package, make_spec):
    package = make_package(
        """
        import helper_lib
        class Deployment:
            def __init__(self, base_directory, context):
                pass
            def request(self, data):
                return helper_lib.VALUE
        """,
        files={"libraries/helper_lib.py": "VALUE = 42\n"},
    )
    executor.deploy(make_spec(package))
    assert run(executor.request("v1", {})).value == 42


def test_workers_die_with_a_killed_server(make_package, tmp_path):
    package = make_package(ECHO)
    script = tmp_path / "server.py"
    script.write_text(
        f"""
import sys, time
from pathlib import Path
from modelharbor.compute.base import Environment, WorkerSpec
from modelharbor.compute.local import LocalExecutor
ex = LocalExecutor()
env = Environment(key="server", python=Path(sys.executable), base="python3-11")
ex.deploy(WorkerSpec(key="v1", revision="r1", package_dir=Path({str(package)!r}), environment=env, minimum_instances=1))
while not [i for i in ex.status("v1").instances if i.state == "ready"]:
    time.sleep(0.02)
import asyncio, threading
threading.Thread(target=asyncio.run, args=(ex.request("v1", {{"sleep": 60}}),), daemon=True).start()
while ex.status("v1").instances[0].state != "busy":
    time.sleep(0.02)
print(ex.status("v1").instances[0].pid, flush=True)  # busy for a minute: only PR_SET_PDEATHSIG ends it early
time.sleep(60)
"""
    )
    server = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(server.stdout.readline())
        assert pid_alive(worker)
        server.kill()  # no atexit, no shutdown: the kernel tells the worker
        server.wait(5)
        wait_until(lambda: not pid_alive(worker), timeout=5, what="the orphaned worker to die")
    finally:
        server.kill()
        server.wait(5)


def test_missing_interpreter_is_a_startup_failure(executor, make_package, make_spec, tmp_path):
    environment = Environment(key="gone", python=tmp_path / "no-such-python", base="python3-11")
    spec = make_spec(make_package(ECHO), environment=environment)
    status = executor.check(spec, timeout=10)
    assert status.state == "failed" and "could not start" in status.error
    executor.deploy(spec)
    result = run(executor.request("v1", {}))
    assert not result.ok and "could not start" in result.error
    assert executor.status("v1").state == "failed"


def test_large_payloads_round_trip(executor, make_package, make_spec):
    executor.deploy(make_spec(make_package(ECHO)))
    blob = "x" * (5 << 20)
    result = run(executor.request("v1", {"blob": blob}))
    assert result.ok and result.value["echo"]["blob"] == blob
    assert run(executor.request("v1", {"small": 1})).value["echo"] == {"small": 1}


# ---------------------------------------------------------------- pipelining: requests sent ahead to a busy instance


def ran(path: Path) -> list[str]:
    """The pids that ran the requests which append to ``path``, one line per run."""
    return path.read_text().split() if path.exists() else []


def test_requests_sent_ahead_each_get_their_own_answer(executor, make_package, make_spec):
    executor.deploy(make_spec(make_package(ECHO), minimum_instances=1))
    wait_until(lambda: ready_pids(executor), what="an instance")

    async def load():
        # each takes a moment, so they overlap even where the worker preempts us on every send
        return await asyncio.gather(*[executor.request("v1", {"i": i, "sleep": 0.002}) for i in range(200)])

    results = run(load())
    assert all(r.ok for r in results)
    assert [r.value["echo"]["i"] for r in results] == list(range(200))
    assert executor.sent_ahead > 100  # most of them waited on the connection, not in the queue
    assert len({r.value["pid"] for r in results}) == 1 and executor.status("v1").restarts == 0


def test_nothing_is_sent_ahead_while_more_instances_may_start(executor, make_package, make_spec):
    executor.deploy(make_spec(make_package(ECHO), minimum_instances=1, maximum_instances=2))
    wait_until(lambda: ready_pids(executor), what="an instance")

    async def two():
        return await asyncio.gather(*[executor.request("v1", {"sleep": 0.5}) for _ in range(2)])

    results = run(two())
    assert all(r.ok for r in results)
    assert len({r.value["pid"] for r in results}) == 2  # the second started an instance instead of waiting
    assert executor.sent_ahead == 0


def test_with_several_instances_only_fast_requests_are_sent_ahead(executor, make_package, make_spec):
    executor.deploy(make_spec(make_package(ECHO), minimum_instances=2, maximum_instances=2))
    wait_until(lambda: len(ready_pids(executor)) == 2, what="two instances")

    async def load(n, data):
        return await asyncio.gather(*[executor.request("v1", data) for _ in range(n)])

    started = time.monotonic()
    slow = run(load(6, {"sleep": 0.2}))
    assert all(r.ok for r in slow) and len({r.value["pid"] for r in slow}) == 2
    # none waited on a busy instance's connection, where it could not move to the one that freed up first
    assert executor.sent_ahead == 0 and time.monotonic() - started < 1.5
    # fast requests are, once the instances' recent requests were fast (≤ PIPELINE_MAX_SERVICE on average: on a
    # machine busy with other work that may take a few rounds)
    for _ in range(20):
        fast = run(load(200, {}))
        assert all(r.ok for r in fast)
        if executor.sent_ahead > 0:
            break
    assert executor.sent_ahead > 0


def test_request_behind_a_timed_out_one_runs_once_on_a_fresh_instance(executor, make_package, make_spec, tmp_path):
    executor.deploy(make_spec(make_package(ECHO), minimum_instances=1))
    pid = run(executor.request("v1", {})).value["pid"]
    marks = tmp_path / "marks"

    async def load():
        slow = asyncio.create_task(executor.request("v1", {"sleep": 30}, timeout=0.5))
        await asyncio.sleep(0.1)
        behind = await executor.request("v1", {"append": str(marks)})
        return await slow, behind

    slow, behind = run(load())
    assert executor.sent_ahead == 1
    assert not slow.ok and "timed out after 0.5 s" in slow.error
    assert behind.ok and behind.value["pid"] != pid
    assert ran(marks) == [str(behind.value["pid"])]  # it never started on the killed instance: it ran once
    wait_until(lambda: executor.status("v1").restarts == 1, what="the restart counted")


def test_request_behind_a_crashed_one_is_retried(executor, make_package, make_spec, tmp_path):
    executor.deploy(make_spec(make_package(ECHO), minimum_instances=1))
    pid = run(executor.request("v1", {})).value["pid"]
    marks = tmp_path / "marks"

    async def load():
        doomed = asyncio.create_task(executor.request("v1", {"sleep": 10}))
        await asyncio.sleep(0.1)
        behind = asyncio.create_task(executor.request("v1", {"append": str(marks)}))
        await asyncio.sleep(0.2)
        assert executor.status("v1").queued == 1
        os.kill(pid, signal.SIGKILL)
        return await doomed, await behind

    doomed, behind = run(load())
    assert executor.sent_ahead == 1
    assert not doomed.ok and "killed by SIGKILL" in doomed.error
    assert behind.ok and behind.value["pid"] != pid and ran(marks) == [str(behind.value["pid"])]


def test_an_instance_dying_mid_pipe_answers_what_ran_and_retries_the_rest(executor, make_package, make_spec, tmp_path):
    executor.deploy(make_spec(make_package(ECHO), minimum_instances=1))
    pid = run(executor.request("v1", {})).value["pid"]
    marks = tmp_path / "marks"

    async def load():
        head = asyncio.create_task(executor.request("v1", {"sleep": 0.3}))
        await asyncio.sleep(0.05)
        ahead = [asyncio.create_task(executor.request("v1", body)) for body in ({"i": "a"}, {"exit": True})]
        await asyncio.sleep(0.05)
        last = asyncio.create_task(executor.request("v1", {"append": str(marks)}))
        return await head, *(await asyncio.gather(*ahead)), await last

    head, a, dies, last = run(load())
    assert executor.sent_ahead == 3
    assert head.ok and a.ok and a.value["echo"] == {"i": "a"} and a.value["pid"] == pid  # answered before the end
    assert not dies.ok and "exit code 3" in dies.error
    assert last.ok and last.value["pid"] != pid and ran(marks) == [str(last.value["pid"])]  # retried, ran once


def test_caller_leaving_a_request_sent_ahead_does_not_shift_answers(executor, make_package, make_spec, tmp_path):
    executor.deploy(make_spec(make_package(ECHO), minimum_instances=1, request_timeout=20))
    pid = run(executor.request("v1", {})).value["pid"]
    marks = tmp_path / "marks"

    async def load():
        head = asyncio.create_task(executor.request("v1", {"sleep": 0.3, "i": "head"}))
        await asyncio.sleep(0.05)
        left = asyncio.create_task(executor.request("v1", {"append": str(marks), "i": "left"}))
        await asyncio.sleep(0.05)
        later = [asyncio.create_task(executor.request("v1", {"i": n})) for n in range(3)]
        await asyncio.sleep(0.05)
        left.cancel()
        with pytest.raises(asyncio.CancelledError):
            await left
        # Block the loop past the head's answer: the worker answers the rest meanwhile, so one read takes several
        # answers at once and the dropped one is already in the buffer when its turn comes.
        time.sleep(0.5)
        return await head, await asyncio.gather(*later)

    head, later = run(load())
    assert head.ok and head.value["echo"]["i"] == "head", head.error
    assert all(r.ok for r in later), [r.error for r in later]
    assert [r.value["echo"]["i"] for r in later] == [0, 1, 2]  # nobody got the dropped answer
    assert ran(marks) == [str(pid)]  # it was on the connection already: it ran, and its answer was dropped
    assert executor.sent_ahead >= 2 and executor.status("v1").restarts == 0


def test_a_request_with_an_earlier_deadline_is_not_sent_ahead(executor, make_package, make_spec, tmp_path):
    executor.deploy(make_spec(make_package(ECHO), minimum_instances=1))
    run(executor.request("v1", {}))
    marks = tmp_path / "marks"

    async def load():
        slow = asyncio.create_task(executor.request("v1", {"sleep": 0.6}))
        await asyncio.sleep(0.05)
        short = await executor.request("v1", {"append": str(marks)}, timeout=0.2)
        return await slow, short

    slow, short = run(load())
    assert slow.ok and not short.ok and "in the queue" in short.error
    assert executor.sent_ahead == 0 and ran(marks) == []  # it timed out in the queue without running


def test_settling_a_pipe_after_the_instance_ended():
    from modelharbor.compute.base import WorkerSpec
    from modelharbor.compute.local import _RETRY, _Instance, _Slot

    loop = asyncio.new_event_loop()
    ex = LocalExecutor()
    try:
        spec = WorkerSpec(key="k", revision="r", package_dir=Path("."), environment=SERVER_ENV)

        def pipe(n: int) -> _Instance:
            inst = _Instance(1, spec, 0, None, 1024)
            inst.broken = "killed"
            inst.pipe.extend(_Slot(loop, inst, 0.0, b"") for _ in range(n))
            return inst

        def outcomes(inst, head_done, frames=()):
            return [item for _, item in ex._settle_pipe_locked(inst, head_done, list(frames))]

        # the running request never finished: nothing behind it started
        assert outcomes(pipe(2), False) == [_RETRY, _RETRY]
        # it finished: the next one may have started (it failed with the instance), the rest did not
        first, rest = outcomes(pipe(2), True)
        assert "ended while it handled the request (killed)" in first and rest is _RETRY
        # answers written before the end are delivered
        got = outcomes(pipe(3), True, [b'{"ok": true, "value": 1}'])
        assert got[0] == {"ok": True, "value": 1} and "ended while" in got[1] and got[2] is _RETRY
        # a slot whose caller left gets nothing
        inst = pipe(2)
        inst.pipe[0].abandoned = True
        assert outcomes(inst, False) == [_RETRY]
        assert not inst.pipe
    finally:
        ex.shutdown()
        loop.close()
