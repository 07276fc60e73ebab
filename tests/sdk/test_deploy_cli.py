"""``modelharbor deploy / predict / deployments / env`` and the SDK's serving methods against a real ``modelharbor
serve`` process (SQLite and PostgreSQL): deploy a real package directory, predict, follow builds, read a failing
build's log, environment variables whose secrets are never printed, pipelines — and no worker process outlives
the server."""

from __future__ import annotations

import hashlib
import json
import uuid
import zipfile
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

from modelharbor.cli import app
from modelharbor.sdk import Client, HarborClientError
from tests.conftest import _PG_PROBLEM, PG_ADMIN_URL
from tests.core.test_serving_logs import CHATTY
from tests.sdk.conftest import Harbor
from tests.servers import running_server

KEY = "mh_deploy_cli_test_key_0123456789"
SECRET = "planted-secret-5b2e-value"

DOUBLER = (
    """
import hashlib
import os


class Deployment:
    def __init__(self, base_directory, context):
        self.base = base_directory
        self.factor = float(os.environ.get("FACTOR", "2"))
        with open(os.path.join(base_directory, "note.txt")) as f:
            self.note = f.read().strip()

    def request(self, data):
        if data["x"] < 0:
            raise ValueError("x must not be negative")
        seen = hashlib.sha256(os.environ.get("TOKEN", "").encode()).hexdigest() == "HASH"
        return {"y": data["x"] * self.factor, "files": sorted(set(os.listdir(self.base)) - {"__pycache__"}), "secret_seen": seen}
"""
).replace("HASH", hashlib.sha256(SECRET.encode()).hexdigest())  # the package holds the hash, not the secret

DOUBLER_FIELDS = {
    "input_fields": ["x:double"],
    "output_fields": ["y:double", "files:array_string", "secret_seen:bool"],
}

ADDER = """
class Deployment:
    def __init__(self, base_directory, context):
        pass

    def request(self, data):
        if data["n"] == 13:
            raise ValueError("unlucky thirteen")
        return {"m": data["n"] + 1}
"""

SHOUT = """
class Deployment:
    def __init__(self, base_directory, context):
        pass

    def request(self, data):
        return data.upper()
"""

BROKEN = """
class Deployment:
    def __init__(self, base_directory, context):
        print("loading the weights")
        raise RuntimeError("weights.bin is missing")

    def request(self, data):
        return data
"""


def package_dir(path: Path, code: str, **extra: str) -> Path:
    """A package directory with deployment.py, extra files, and a __pycache__ and .git that must stay home."""
    path.mkdir(parents=True)
    (path / "deployment.py").write_text(code)
    for name, text in extra.items():
        (path / name).write_text(text)
    (path / "__pycache__").mkdir()
    (path / "__pycache__" / "deployment.cpython-311.pyc").write_bytes(b"\x00junk")
    (path / ".git").mkdir()
    (path / ".git" / "config").write_text("[core]\n")
    return path


def workers_under(root: Path) -> list[psutil.Process]:
    """Worker processes of the server whose data is under ``root``: by their command line, or, sandboxed (their
    package is at /home/deployment), by the bind mount of their package from ``root`` in their mount table."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if "worker_main" not in cmd:
            continue
        try:
            mounts = Path(f"/proc/{proc.pid}/mountinfo").read_text()
        except OSError:
            mounts = ""
        if str(root) in cmd or any(line.split()[3].startswith(str(root)) for line in mounts.splitlines()):
            found.append(proc)
    return found


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"deploy-{request.param}")
    extra: dict[str, str] = {}
    database = None
    if request.param == "postgresql":
        if _PG_PROBLEM:
            pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {_PG_PROBLEM}")
        import psycopg

        database = f"modelharbor_deploy_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_ADMIN_URL + "/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        extra["MODELHARBOR_DATABASE_URL"] = f"{PG_ADMIN_URL}/{database}"
    try:
        with running_server(root, KEY, **extra) as url:
            yield Harbor(url=url, key=KEY, root=root)
        assert workers_under(root) == [], "worker processes outlived the server"
    finally:
        if database:
            import psycopg

            with psycopg.connect(PG_ADMIN_URL + "/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@pytest.fixture
def client(served):
    with Client(served.url, served.key, timeout=30) as c:
        yield c


@pytest.fixture
def cli(served, tmp_path):
    runner, env = CliRunner(), served.env(tmp_path / "state")

    def run(*args: str, code: int = 0, input: str | None = None):
        result = runner.invoke(app, list(args), env=env, input=input)
        assert result.exit_code == code, (args, result.stdout, result.stderr, result.exception)
        return result

    return run


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_sdk_deploy_predict_env_and_pipelines(client, tmp_path):
    project = unique("sdk")
    src = package_dir(tmp_path / "doubler", DOUBLER, **{"note.txt": "hello from the package"})
    statuses: list[str] = []
    steps: list[str] = []
    sent: list[tuple[int, int]] = []
    result = client.deployments.deploy(
        project,
        "doubler",
        src,
        **DOUBLER_FIELDS,
        maximum_idle_time=10,
        progress=lambda done, total: sent.append((done, total)),
        on_status=lambda rev, _elapsed: statuses.append(rev.status),
        on_step=steps.append,
    )
    rev = result.revision
    assert rev.status == "success", rev
    assert "the deployment initialised" in rev.build_log
    assert result.created == [f"project {project}", "deployment doubler", "version v1"]
    assert statuses[-1] == "success" and set(statuses) <= {"queued", "building", "success"}
    assert sent and sent[-1][0] == sent[-1][1] > 0
    assert any("created deployment doubler" in s for s in steps)
    version = client.deployments.version(project, "doubler", "v1")
    assert (version.status, version.active_revision, version.maximum_idle_time) == ("available", rev.id, 10)
    package = client.files.download(rev.file_id, tmp_path / "uploaded.zip")
    assert sorted(zipfile.ZipFile(package).namelist()) == ["deployment.py", "note.txt"]  # no __pycache__, .git

    answer = client.deployments.predict(project, "doubler", {"x": 2})
    assert answer.status == "completed", answer
    assert answer.result == {"y": 4.0, "files": ["deployment.py", "note.txt"], "secret_seen": False}
    failed = client.deployments.predict(project, "doubler", {"x": -1})
    assert failed.status == "failed" and "x must not be negative" in failed.error_message
    with pytest.raises(HarborClientError) as e:
        client.deployments.predict(project, "doubler", {"x": "two"})
    assert e.value.status == 400 and "'x'" in e.value.message

    # variables: a project value and a secret for the version; the next request sees both
    client.env.set(project, "FACTOR", "3")
    secret = client.env.set(project, "TOKEN", SECRET, secret=True, deployment="doubler", version="v1")
    assert secret.value is None and secret.secret is True
    again = client.env.set(project, "TOKEN", SECRET, secret=True, deployment="doubler", version="v1")
    assert again.id == secret.id  # set changes the existing variable
    listed = client.env.list(project, deployment="doubler", version="v1")
    assert [(e.name, e.value, e.inheritance_type) for e in listed] == [
        ("FACTOR", "3", "project"),
        ("TOKEN", None, None),
    ]
    assert SECRET not in json.dumps([e.model_dump() for e in listed])
    seen = client.deployments.predict(project, "doubler", {"x": 2}).result
    assert (seen["y"], seen["secret_seen"]) == (6.0, True)
    client.env.unset(project, "FACTOR")
    with pytest.raises(HarborClientError) as e:
        client.env.unset(project, "FACTOR")
    assert e.value.status == 404

    # deploy again: nothing created, the scaling follows; a .zip works as well as a directory
    zip_path = tmp_path / "doubler.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        zf.writestr("deployment.py", DOUBLER)
        zf.writestr("note.txt", "zipped")
    again = client.deployments.deploy(project, "doubler", zip_path, maximum_idle_time=20)
    assert again.created == [] and again.revision.status == "success"
    assert client.deployments.version(project, "doubler", "v1").maximum_idle_time == 20
    assert client.deployments.predict(project, "doubler", {"x": 1}).result["files"] == ["deployment.py", "note.txt"]
    assert [r.status for r in client.deployments.revisions(project, "doubler", "v1")] == ["success", "success"]

    # refusals before anything is sent
    with pytest.raises(HarborClientError) as e:
        client.deployments.deploy(unique("absent"), "doubler", src, create=False)
    assert e.value.status == 404
    with pytest.raises(HarborClientError) as e:
        client.deployments.deploy(project, "doubler", src, plain=True)
    assert "structured" in e.value.message
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(HarborClientError) as e:
        client.deployments.deploy(project, "other", empty)
    assert e.value.code == "LOCAL_FILE" and "deployment.py" in e.value.message
    with pytest.raises(HarborClientError) as e:
        client.deployments.deploy(project, "other", src, input_fields=["x"])
    assert "NAME:TYPE" in e.value.message
    assert [d.name for d in client.deployments.list(project)] == ["doubler"]

    # a failing build raises with the reason and the log's tail
    broken = package_dir(tmp_path / "broken", BROKEN)
    with pytest.raises(HarborClientError) as e:
        client.deployments.deploy(project, "doubler", broken, version="v2")
    assert e.value.code == "BUILD_FAILED" and "weights.bin is missing" in e.value.message
    assert "build log" in e.value.message and "build failed" in e.value.message
    assert e.value.details["revision"].status == "failed"
    assert client.deployments.version(project, "doubler", "v2").status == "unavailable"

    # a pipeline of the deployment, twice
    client.deployments.deploy(
        project,
        "adder",
        package_dir(tmp_path / "adder", ADDER),
        input_fields={"n": "int"},
        output_fields={"m": "int"},
        maximum_idle_time=10,
    )
    client.pipelines.create(project, "twice", input_fields={"n": "int"}, output_fields={"m": "int"})
    feed = [{"source_field_name": "n", "destination_field_name": "n"}]
    client.pipelines.create_version(
        project,
        "twice",
        "v1",
        objects=[{"name": "one", "reference_name": "adder"}, {"name": "two", "reference_name": "adder"}],
        attachments=[
            {"destination_name": "one", "sources": [{"source_name": "pipeline_start", "mapping": feed}]},
            {
                "destination_name": "two",
                "sources": [
                    {"source_name": "one", "mapping": [{"source_field_name": "m", "destination_field_name": "n"}]}
                ],
            },
            {
                "destination_name": "pipeline_end",
                "sources": [
                    {"source_name": "two", "mapping": [{"source_field_name": "m", "destination_field_name": "m"}]}
                ],
            },
        ],
    )
    assert [p.name for p in client.pipelines.list(project)] == ["twice"]
    assert [v.version for v in client.pipelines.versions(project, "twice")] == ["v1"]
    ran = client.pipelines.predict(project, "twice", {"n": 1})
    assert (ran.status, ran.result) == ("completed", {"m": 3}) and len(ran.steps) == 2
    assert client.pipelines.predict(project, "twice", {"n": 12}).status == "failed"  # 13 reaches the second
    client.pipelines.delete_version(project, "twice", "v1")
    client.pipelines.delete(project, "twice")
    client.deployments.delete(project, "adder")
    assert [d.name for d in client.deployments.list(project)] == ["doubler"]


def test_cli_deploy_predict_show_and_logs(cli, tmp_path):
    project = unique("cli")
    src = package_dir(tmp_path / "adder", ADDER)
    base = ["--project", project, "--deployment", "adder"]
    done = cli("deploy", str(src), *base, "--input", "n:int", "--output", "m:int", "--max-idle-time", "10")
    assert f"deployed {project}/adder/v1: revision" in done.stdout and "(success)" in done.stdout
    assert "build: queued" in done.stderr or "build: building" in done.stderr
    assert "build: success" in done.stderr and f"created project {project}" in done.stderr

    assert json.loads(cli("predict", *base, '{"n": 2}').stdout) == {"m": 3}
    data = tmp_path / "input.json"
    data.write_text('{"n": 41}')
    assert json.loads(cli("predict", *base, f"@{data}").stdout) == {"m": 42}
    assert json.loads(cli("predict", *base, "--version", "v1", "-", input='{"n": 0}').stdout) == {"m": 1}
    failed = cli("predict", *base, '{"n": 13}', code=1)
    assert "unlucky thirteen" in failed.stderr and failed.stdout == ""
    assert "'n'" in cli("predict", *base, '{"n": "x"}', code=1).stderr
    assert "not valid JSON" in cli("predict", *base, "{nope", code=2).stderr
    assert "not found" in cli("predict", "--project", project, "--deployment", "nope", "{}", code=1).stderr

    listed = cli("deployments", "list", "--project", project).stdout
    assert "adder" in listed and "n:int" in listed and "m:int" in listed and "1 deployment(s)" in listed

    # a failing build of v2: non-zero exit, the reason and the log's tail; v1 keeps serving
    broken = package_dir(tmp_path / "broken", BROKEN)
    bad = cli("deploy", str(broken), *base, "--version", "v2", "--max-idle-time", "10", code=1)
    assert "weights.bin is missing" in bad.stderr and "build log (last" in bad.stderr
    assert "build: failed" in bad.stderr and "deployed" not in bad.stdout
    log = cli("deployments", "logs", project, "adder", "v2")
    assert "build failed" in log.stdout and "failed" in log.stderr and "weights.bin is missing" in log.stderr
    ok_log = cli("deployments", "logs", project, "adder", "v1")
    assert "the deployment initialised" in ok_log.stdout and "success" in ok_log.stderr
    assert "not found" in cli("deployments", "logs", project, "adder", "v1", "nope", code=1).stderr
    shown = cli("deployments", "show", project, "adder").stdout
    assert "input: n:int" in shown and "v1 (default)" in shown and "available" in shown
    assert "success" in shown and "failed" in shown and "weights.bin" in shown
    assert json.loads(cli("predict", *base, '{"n": 5}').stdout) == {"m": 6}

    queued = cli("deploy", str(src), *base, "--version", "v3", "--no-wait")
    assert "revision" in queued.stdout and "queued" in queued.stdout

    # plain text in and out
    shout = package_dir(tmp_path / "shout", SHOUT)
    plain = ["--project", project, "--deployment", "shout"]
    cli("deploy", str(shout), *plain, "--plain", "--max-idle-time", "10")
    assert cli("predict", *plain, "--plain", "hello there").stdout == "HELLO THERE\n"
    assert cli("predict", *plain, '"json text"').stdout.strip() == '"JSON TEXT"'
    assert cli("deploy", str(shout), *plain, "--plain", "--input", "a:int", code=2)
    assert "NAME:TYPE" in cli("deploy", str(src), *base, "--input", "n", code=2).stderr


def test_cli_json_deletes_and_pipelines(cli, client, tmp_path):
    project = unique("json")
    base = ["--project", project, "--deployment", "adder"]
    src = package_dir(tmp_path / "adder", ADDER)
    cli("deploy", str(src), *base, "--input", "n:int", "--output", "m:int", "--max-idle-time", "10")
    cli("deploy", str(src), *base, "--version", "v2", "--max-idle-time", "10")
    # names are checked before anything is sent
    assert "invalid project name" in cli("deploy", str(src), "-p", "Not_Deployable", "-d", "x", code=1).stderr
    assert "lowercase" in cli("deploy", str(src), "-p", project, "-d", "Bad Name", code=2).stderr
    assert client.projects.find("Not_Deployable") is None

    listed = json.loads(cli("deployments", "list", project, "--json").stdout)
    assert [(d["name"], d["input_fields"][0]["name"]) for d in listed] == [("adder", "n")]
    shown = json.loads(cli("deployments", "show", project, "adder", "--json").stdout)
    assert sorted(v["version"] for v in shown["versions"]) == ["v1", "v2"] and shown["default_version"] == "v1"
    table = cli("deployments", "show", project, "adder").stdout
    assert all(v.active_revision in table for v in client.deployments.versions(project, "adder"))  # full ids

    client.pipelines.create(project, "twice", input_fields={"n": "int"}, output_fields={"m": "int"})
    feed = [{"source_field_name": "n", "destination_field_name": "n"}]
    back = [{"source_field_name": "m", "destination_field_name": "m"}]
    client.pipelines.create_version(
        project,
        "twice",
        "v1",
        objects=[{"name": "one", "reference_name": "adder"}],
        attachments=[
            {"destination_name": "one", "sources": [{"source_name": "pipeline_start", "mapping": feed}]},
            {"destination_name": "pipeline_end", "sources": [{"source_name": "one", "mapping": back}]},
        ],
    )
    assert [p["name"] for p in json.loads(cli("pipelines", "list", project, "--json").stdout)] == ["twice"]
    assert "1 pipeline(s)" in cli("pipelines", "list", project).stdout
    pipeline = json.loads(cli("pipelines", "show", project, "twice", "--json").stdout)
    assert [v["version"] for v in pipeline["versions"]] == ["v1"]
    assert "one → adder" in cli("pipelines", "show", project, "twice").stdout
    assert "deleted pipeline" in cli("pipelines", "delete-version", project, "twice", "v1").stdout
    assert "--yes" in cli("pipelines", "delete", project, "twice", code=2).stderr  # no terminal: no silent delete
    assert "deleted pipeline" in cli("pipelines", "delete", project, "twice", "--yes").stdout
    assert client.pipelines.list(project) == []

    assert f"deleted {project}/adder/v2" in cli("deployments", "delete-version", project, "adder", "v2").stdout
    assert [v.version for v in client.deployments.versions(project, "adder")] == ["v1"]
    assert "--yes" in cli("deployments", "delete", project, "adder", code=2).stderr
    assert "1 version(s)" in cli("deployments", "delete", project, "adder", "-y").stdout
    assert client.deployments.list(project) == []
    assert "not found" in cli("deployments", "delete", project, "adder", "-y", code=1).stderr


def test_runtime_logs_api_and_cli(cli, client, served, tmp_path):
    project = unique("logs")
    base = ["--project", project, "--deployment", "chatty"]
    cli("deploy", str(package_dir(tmp_path / "chatty", CHATTY)), *base, "--input", "n:int", "--output", "m:int")
    for n in (1, -1, 2):
        assert json.loads(cli("predict", *base, json.dumps({"n": n})).stdout) == {"m": n}

    def texts(**kw) -> list[str]:
        return [e.text for e in client.deployments.logs(project, "chatty", **kw)]

    lines = texts()
    assert [t for t in lines if t.startswith(("model", "asked"))] == [
        "model loaded",
        "asked for 1",
        "asked for -1",
        "asked for 2",
    ]
    assert texts(level="error") == ["negative input -1"]
    assert texts(contains="asked", limit=2) == ["asked for -1", "asked for 2"]
    assert texts(version="v1") == lines
    items = client.deployments.logs(project, "chatty", contains="asked for 2")
    assert items[0].version == "v1" and items[0].stream == "stdout" and items[0].level == "info"
    later = texts(since=items[0].time.isoformat())  # inclusive
    assert later[0] == "asked for 2" and "asked for -1" not in later
    for bad in ({"level": "debug"}, {"limit": 0}, {"limit": 5001}, {"since": "yesterday"}):
        with pytest.raises(HarborClientError) as exc:
            client.deployments.logs(project, "chatty", **bad)
        assert exc.value.status in (400, 422), bad
    with pytest.raises(HarborClientError) as exc:
        client.deployments.logs(project, "nope")
    assert exc.value.status == 404

    out = cli("deployments", "logs", project, "chatty", "--runtime").stdout
    assert "model loaded" in out and "asked for 2" in out and "v1 stdout: asked for 1" in out
    out = cli("deployments", "logs", project, "chatty", "v1", "--runtime", "--level", "error").stdout
    assert out.strip().endswith("stderr: negative input -1") and "asked" not in out
    assert cli("deployments", "logs", project, "chatty", "-r", "--grep", "asked", "-n", "1").stdout.count("\n") == 1
    assert "--runtime" in cli("deployments", "logs", project, "chatty", "v1", "--grep", "x", code=2).stderr
    assert "VERSION" in cli("deployments", "logs", project, "chatty", code=2).stderr


def test_cli_env_secrets_are_never_printed(cli, tmp_path):
    project = unique("env")
    src = package_dir(tmp_path / "doubler", DOUBLER, **{"note.txt": "n"})
    base = ["--project", project, "--deployment", "doubler"]
    fields = ["--input", "x:double", "--output", "y:double", "--output", "files:array_string"]
    cli("deploy", str(src), *base, *fields, "--output", "secret_seen:bool", "--max-idle-time", "10")
    level = ["--deployment", "doubler", "--version", "v1"]
    set_secret = cli("env", "set", project, "TOKEN", SECRET, "--secret", *level)
    assert "set secret TOKEN" in set_secret.stdout and SECRET not in set_secret.stdout + set_secret.stderr
    prompted = cli("env", "set", project, "FACTOR", "--deployment", "doubler", input="3\n")
    assert "set FACTOR" in prompted.stdout
    cli("env", "set", project, "MODE", "fast")
    listed = cli("env", "list", project, *level)
    assert SECRET not in listed.stdout + listed.stderr
    lines = {line.split()[0]: line for line in listed.stdout.splitlines() if line.strip()[:1].isupper()}
    assert "(secret)" in lines["TOKEN"] and "this level" in lines["TOKEN"]
    assert "3" in lines["FACTOR"] and "deployment doubler" in lines["FACTOR"]
    assert "fast" in lines["MODE"] and f"project {project}" in lines["MODE"]
    assert "3 variable(s)" in listed.stdout
    result = json.loads(cli("predict", *base, '{"x": 2}').stdout)
    assert (result["y"], result["secret_seen"]) == (6.0, True)

    cli("env", "delete", project, "FACTOR", "--deployment", "doubler")
    assert "FACTOR" not in cli("env", "list", project, "--deployment", "doubler").stdout
    assert (
        "no environment variable" in cli("env", "delete", project, "FACTOR", "--deployment", "doubler", code=1).stderr
    )
    assert "--deployment" in cli("env", "list", project, "--version", "v1", code=2).stderr
    assert "Invalid environment variable name" in cli("env", "set", project, "1BAD", "x", code=1).stderr


def test_worker_processes_end_with_the_server(tmp_path):
    root = tmp_path / "server"
    root.mkdir()
    with running_server(root, KEY) as url, Client(url, KEY, timeout=30) as client:
        src = package_dir(tmp_path / "adder", ADDER)
        client.deployments.deploy(
            "procs",
            "adder",
            src,
            input_fields={"n": "int"},
            output_fields={"m": "int"},
            minimum_instances=1,
            maximum_idle_time=10,
        )
        assert client.deployments.predict("procs", "adder", {"n": 1}).result == {"m": 2}
        assert workers_under(root), "the request should have started a worker process"
    assert workers_under(root) == []
