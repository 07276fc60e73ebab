"""User code cannot reach the server: real worker processes in the real sandbox (bubblewrap, uids, cgroups).

The snoop package does what a hostile tenant's deployment would: read the server's environment, secret key, database
and another organisation's package, look for other processes and signal them, write where it should not. Every
attempt must fail, and the server (this test process) must be unharmed. Skipped, saying why, on a machine that
cannot isolate (no bubblewrap, no namespaces); `make test` installs bubblewrap where it runs as root.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import pytest

from modelharbor.compute.base import Limits
from modelharbor.compute.local import LocalExecutor
from modelharbor.compute.sandbox import LOCK_DIR, Sandbox, python_roots, share_read_only
from tests.compute.helpers import ECHO, wait_until

SNOOP = """
import os, signal, socket

def attempt(fn):
    try:
        value = fn()
        return "GOT: " + (value if isinstance(value, str) else repr(value))[:200]
    except BaseException as exc:
        return "refused: " + type(exc).__name__

class Deployment:
    def __init__(self, base_directory, context):
        self.base = base_directory

    def request(self, data):
        out = {"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(), "env": dict(os.environ),
               "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()), "ppid": os.getppid(),
               "base": self.base}
        for name, path in data["read"].items():
            out[name] = attempt(lambda path=path: open(path, "rb").read().decode("latin-1"))
        out["listdir"] = {p: attempt(lambda p=p: os.listdir(p)) for p in data["list"]}
        out["kill_server"] = attempt(lambda: os.kill(data["server_pid"], signal.SIGKILL))
        out["kill_parent"] = attempt(lambda: os.kill(os.getppid(), signal.SIGKILL))
        out["write_package"] = attempt(lambda: open(os.path.join(self.base, "x"), "w").write("x"))
        out["write_tmp"] = attempt(lambda: open("/tmp/scratch", "w").write("ok"))
        if data.get("connect"):
            out["connect"] = attempt(lambda: socket.create_connection(("127.0.0.1", data["connect"]), 2).close())
        return out
"""

HOG = """
import os

class Deployment:
    def __init__(self, base_directory, context):
        pass

    def request(self, data):
        if data == "memory":
            block = bytearray(512 * 1024 * 1024)  # past the 128 MiB limit: the kernel ends the instance
            return len(block)
        if data == "fork":
            children = []
            try:
                for _ in range(200):
                    pid = os.fork()
                    if pid == 0:
                        import time
                        time.sleep(30)
                        os._exit(0)
                    children.append(pid)
                refused = None
            except OSError as exc:
                refused = type(exc).__name__
            for pid in children:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            return {"started": len(children), "refused": refused}
        if data == "file":
            try:
                with open("/tmp/big", "wb") as f:
                    f.write(b"x" * (4 * 1024 * 1024))
                return "wrote"
            except OSError as exc:
                return "refused: " + type(exc).__name__
"""


@pytest.fixture(scope="module")
def sandbox():
    box = Sandbox("auto", limits=Limits(memory=128 * 1024 * 1024, processes=64, file_size=1024 * 1024))
    if not box.isolated:
        pytest.skip(f"this machine cannot isolate user code: {box.reason}")
    return box


@pytest.fixture
def isolated(sandbox):
    ex = LocalExecutor(backoff=0.05, backoff_max=0.2, stop_grace=2.0, tick=0.05, sandbox=sandbox)
    yield ex
    ex.shutdown()


def _package(make_package, code: str, name: str | None = None) -> Path:
    root = make_package(code, name=name)
    share_read_only(root)
    return root


def _ask(ex: LocalExecutor, key: str, data, timeout: float = 60.0):
    return asyncio.run(ex.request(key, data, timeout=timeout))


def test_snoop_gets_nothing_and_the_server_is_unharmed(isolated, make_package, make_spec, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    (data_dir / "secret_key").write_text("the-secret-key")
    (data_dir / "modelharbor.db").write_bytes(b"SQLite format 3\0 rows")
    other = _package(make_package, ECHO, name="other-org")
    (other / "weights.bin").write_text("another organisation's model")
    snoop = _package(make_package, SNOOP, name="snoop")
    os.environ["MODELHARBOR_TEST_SECRET"] = "admin-key-in-the-server-env"
    try:
        isolated.deploy(make_spec(snoop, key="snoop", env_vars={"MY_SECRET": "mine"}, tenant="org-b"))
        isolated.deploy(make_spec(other, key="other", tenant="org-a"))
        assert _ask(isolated, "other", {"x": 1}).ok
        result = _ask(
            isolated,
            "snoop",
            {
                "server_pid": os.getpid(),
                "read": {
                    "server_environ": f"/proc/{os.getpid()}/environ",
                    "parent_environ": "/proc/1/environ",
                    "secret_key": str(data_dir / "secret_key"),
                    "database": str(data_dir / "modelharbor.db"),
                    "other_package": str(other / "weights.bin"),
                    "shadow": "/etc/shadow",
                    "root_home": "/root/.bash_history",
                },
                "list": [str(tmp_path), str(data_dir), "/root", "/work", "/home"],
            },
        )
    finally:
        del os.environ["MODELHARBOR_TEST_SECRET"]
    assert result.ok, result.error
    got = result.value
    for name in ("server_environ", "parent_environ", "secret_key", "database", "other_package", "shadow", "root_home"):
        assert got[name].startswith("refused"), (name, got[name])
    # what it sees of the file system: its package, and the folders leading to its interpreter's installation
    roots = python_roots(Path(sys.executable))
    for path, answer in got["listdir"].items():
        if path == "/home":
            assert answer == "GOT: ['deployment']", answer  # its own package, nothing else
        elif answer.startswith("GOT"):
            seen = eval(answer[5:])  # noqa: S307 - a list literal this test's package printed
            assert all(any(Path(path, name) in [r, *r.parents] for r in roots) for name in seen), (path, seen)
        else:
            assert answer.startswith("refused"), (path, answer)
    assert got["listdir"][str(data_dir)].startswith("refused")
    assert got["kill_server"].startswith("refused") and got["kill_parent"].startswith("refused")
    assert got["write_package"].startswith("refused") and got["write_tmp"] == "GOT: 2"
    assert got["uid"] != 0 and got["gid"] != 0 and got["groups"] in ([], [got["gid"]])
    assert got["pids"] == [1, 2] and got["ppid"] == 1  # only the sandbox's own processes are visible
    assert got["base"] == "/home/deployment"
    assert not [k for k in got["env"] if k.startswith("MODELHARBOR")]
    assert set(got["env"]) <= {"PATH", "HOME", "TMPDIR", "PWD", "PYTHONUNBUFFERED", "MY_SECRET", "LANG", "LC_ALL"}
    assert got["env"]["MY_SECRET"] == "mine"
    other_uid = _ask(isolated, "other", {"env": []}).value
    assert other_uid is not None
    # the server lives on and still answers
    assert _ask(isolated, "other", {"x": 2}).ok
    assert isolated.status("snoop").state == "running"


def test_each_instance_has_its_own_uid_and_secrets_stay_off_command_lines(isolated, make_package, make_spec):
    code = "import os\nclass Deployment:\n    def __init__(self, b, c): pass\n    def request(self, d): return os.getuid()\n"
    a = _package(make_package, code)
    b = _package(make_package, code)
    isolated.deploy(make_spec(a, key="a", env_vars={"TOKEN": "very-secret-token"}, tenant="org-a"))
    isolated.deploy(make_spec(b, key="b", tenant="org-a"))
    uid_a, uid_b = _ask(isolated, "a", {}).value, _ask(isolated, "b", {}).value
    assert uid_a != uid_b and min(uid_a, uid_b) >= 1_000
    pid = isolated.status("a").instances[0].pid
    assert b"very-secret-token" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    assert (LOCK_DIR / str(uid_a)).exists()
    isolated.undeploy("a")
    wait_until(lambda: isolated.status("a").state == "stopped", what="instance a stopped")
    # the uid is free again: another claim of it succeeds
    import fcntl

    with open(LOCK_DIR / str(uid_a), "a") as f:
        wait_until(lambda: _can_lock(fcntl, f), what="uid released")


def _can_lock(fcntl, f) -> bool:
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    fcntl.flock(f, fcntl.LOCK_UN)
    return True


def test_limits_hold_memory_processes_and_file_size(isolated, make_package, make_spec):
    pkg = _package(make_package, HOG)
    isolated.deploy(make_spec(pkg, key="hog", tenant="org-b"))
    forked = _ask(isolated, "hog", "fork").value
    assert forked["refused"] == "BlockingIOError" and forked["started"] < 64, forked
    assert _ask(isolated, "hog", "file").value == "refused: OSError"
    memory = _ask(isolated, "hog", "memory")
    assert not memory.ok and ("killed" in memory.error or "MemoryError" in memory.error), memory.error
    # the instance was replaced; the next request is answered
    assert _ask(isolated, "hog", "file").ok


def test_no_network_setting_cuts_workloads_off(sandbox, make_package, make_spec):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    box = Sandbox("auto", network="none", limits=sandbox.limits)
    ex = LocalExecutor(backoff=0.05, backoff_max=0.2, stop_grace=2.0, tick=0.05, sandbox=box)
    try:
        pkg = _package(make_package, SNOOP)
        ex.deploy(make_spec(pkg, key="s", tenant="org-b"))
        got = _ask(ex, "s", {"server_pid": os.getpid(), "read": {}, "list": [], "connect": port}).value
        assert got["connect"].startswith("refused"), got["connect"]
    finally:
        ex.shutdown()
        listener.close()
    # with the host's network (the default) the same connection is made
    ex = LocalExecutor(backoff=0.05, backoff_max=0.2, stop_grace=2.0, tick=0.05, sandbox=sandbox)
    listener = socket.create_server(("127.0.0.1", port))
    try:
        ex.deploy(make_spec(pkg, key="s", tenant="org-b"))
        got = _ask(ex, "s", {"server_pid": os.getpid(), "read": {}, "list": [], "connect": port}).value
        assert got["connect"] == "GOT: None"
    finally:
        ex.shutdown()
        listener.close()


def test_a_crashing_worker_is_reported_as_killed_and_leaves_no_cgroup(isolated, make_package, make_spec):
    code = "import os, signal\nclass Deployment:\n    def __init__(self, b, c): pass\n    def request(self, d): os.kill(os.getpid(), signal.SIGKILL)\n"
    pkg = _package(make_package, code)
    isolated.deploy(make_spec(pkg, key="k", tenant="org-a"))
    result = _ask(isolated, "k", {})
    assert not result.ok and "SIGKILL" in result.error, result.error
    isolated.undeploy("k")
    isolated.shutdown()
    groups = isolated.sandbox.cgroups
    if groups is not None:
        leftover = [p for d in groups._dirs.values() for p in d.glob(f"w-*-{os.getpid()}*")]
        assert not leftover, leftover


def test_unisolated_servers_run_only_the_home_organisations_code(make_package, make_spec):
    box = Sandbox("off", home_tenant=lambda: "home-org")
    assert not box.isolated and "MODELHARBOR_SANDBOX=off" in box.reason
    assert "NOT isolated" in box.describe() and "bubblewrap" in box.describe()
    ex = LocalExecutor(backoff=0.05, backoff_max=0.2, stop_grace=2.0, tick=0.05, sandbox=box)
    try:
        pkg = make_package(ECHO)
        ex.deploy(make_spec(pkg, key="home", tenant="home-org"))
        ex.deploy(make_spec(pkg, key="other", tenant="another-org"))
        assert _ask(ex, "home", {"x": 1}).ok
        refused = _ask(ex, "other", {"x": 1}, timeout=20)
        assert not refused.ok and "MODELHARBOR_SINGLE_TENANT" in refused.error, refused.error
        assert "cannot isolate" in ex.status("other").error
    finally:
        ex.shutdown()
    trusting = Sandbox("off", single_tenant=True, home_tenant=lambda: "home-org")
    assert trusting.refusal("another-org") is None and "trusts every organisation" in trusting.describe()


def test_required_sandbox_refuses_to_start_code_it_cannot_isolate(make_package, make_spec, monkeypatch):
    box = Sandbox("bwrap", single_tenant=True)
    monkeypatch.setattr(box, "_bwrap", None)
    assert not box.isolated and "bwrap" in box.reason
    ex = LocalExecutor(backoff=0.05, backoff_max=0.2, stop_grace=2.0, tick=0.05, sandbox=box)
    try:
        ex.deploy(make_spec(make_package(ECHO), key="v", tenant="t"))
        result = _ask(ex, "v", {}, timeout=20)
        assert not result.ok and "MODELHARBOR_SANDBOX=bwrap" in result.error, result.error
    finally:
        ex.shutdown()


def test_interpreters_inside_the_data_directory_are_refused(tmp_path):
    box = Sandbox("auto", private=(Path(sys.prefix) / "data",))
    if not box.isolated:
        pytest.skip(f"this machine cannot isolate user code: {box.reason}")
    from modelharbor.compute.sandbox import SandboxError

    with pytest.raises(SandboxError, match="private data"):
        box._python_binds(Path(sys.executable))


def test_signals_from_the_server_reach_the_whole_sandbox(isolated, make_package, make_spec):
    code = (
        "import subprocess, sys\nclass Deployment:\n    def __init__(self, b, c):\n"
        "        self.child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        "    def request(self, d): return self.child.pid\n"
    )
    pkg = _package(make_package, code)
    isolated.deploy(make_spec(pkg, key="tree", tenant="org-a"))
    assert _ask(isolated, "tree", {}).ok
    pid = isolated.status("tree").instances[0].pid
    os.killpg(pid, signal.SIGKILL)
    wait_until(lambda: isolated.status("tree").instances == () or isolated.status("tree").restarts, what="reaped")
    isolated.shutdown()
    import psutil

    stray = [p for p in psutil.process_iter(["cmdline"]) if "time.sleep(600)" in " ".join(p.info["cmdline"] or [])]
    assert not stray, stray


def test_the_sweep_removes_groups_a_killed_server_left_and_keeps_live_ones(sandbox):
    groups = sandbox.cgroups
    if groups is None:
        pytest.skip("no writable cgroup hierarchy here: limits fall back to rlimits")
    import subprocess
    import time

    stale = groups.create(f"w-stale-{os.getpid()}", memory=64 << 20, cpus=None, processes=8)
    live = groups.create(f"w-live-{os.getpid()}", memory=64 << 20, cpus=None, processes=8)
    young = groups.create(f"w-young-{os.getpid()}", memory=64 << 20, cpus=None, processes=8)
    proc = subprocess.Popen(["sleep", "30"])
    try:
        for procs in live.procs:
            procs.write_text(str(proc.pid))
        old = time.time() - 3600
        for d in (*stale.dirs, *live.dirs):
            os.utime(d, (old, old))
        groups.sweep()
        assert not any(d.exists() for d in stale.dirs)
        assert all(d.exists() for d in (*live.dirs, *young.dirs))
    finally:
        proc.kill()
        proc.wait()
        live.remove()
        young.remove()
    assert not any(d.exists() for d in (*live.dirs, *young.dirs))
