"""``modelharbor export / import / exports / imports`` and the SDK's transfer methods against a real ``modelharbor
serve`` process (SQLite and PostgreSQL): export → download (SHA-256 checked, resumed) → import into another
project with ``--yes`` and a re-supplied ``--secret`` (the imported version serves with it), a hidden prompt on a
terminal, selections, and failures that exit non-zero with the server's reason; secrets are never printed."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pty
import select
import subprocess
import sys
import time
import uuid
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelharbor.cli import app
from modelharbor.sdk import Client, HarborClientError, confirmation_body, missing_values
from tests.conftest import _PG_PROBLEM, PG_ADMIN_URL
from tests.sdk.conftest import Harbor
from tests.servers import running_server

KEY = "mh_transfer_cli_test_key_0123456789"
SECRET = "planted-secret-7c41-value"
NEW_SECRET = "re-supplied-secret-0d93-value"
ADDER = """
import hashlib
import os


class Deployment:
    def __init__(self, base_directory, context):
        self.offset = int(os.environ.get("OFFSET", "0"))
        self.token = hashlib.sha256(os.environ.get("TOKEN", "").encode()).hexdigest()

    def request(self, data):
        return {"m": data["n"] + self.offset, "token": self.token}
"""


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"transfer-{request.param}")
    extra: dict[str, str] = {}
    database = None
    if request.param == "postgresql":
        if _PG_PROBLEM:
            pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {_PG_PROBLEM}")
        import psycopg

        database = f"modelharbor_transfer_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_ADMIN_URL + "/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        extra["MODELHARBOR_DATABASE_URL"] = f"{PG_ADMIN_URL}/{database}"
    try:
        with running_server(root, KEY, **extra) as url:
            yield Harbor(url=url, key=KEY, root=root)
    finally:
        if database:
            import psycopg

            with psycopg.connect(PG_ADMIN_URL + "/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@pytest.fixture(scope="module")
def source(served, tmp_path_factory) -> str:
    """A project with a built deployment (variables at every level, a secret at the version's), and a pipeline."""
    project = f"src-{uuid.uuid4().hex[:6]}"
    pkg = tmp_path_factory.mktemp("adder")
    (pkg / "deployment.py").write_text(ADDER)
    with Client(served.url, served.key, timeout=30) as c:
        result = c.deployments.deploy(
            project, "adder", pkg, input_fields=["n:int"], output_fields=["m:int", "token:string"]
        )
        assert result.revision.status == "success", result
        c.env.set(project, "A", "project-value")
        c.env.set(project, "OFFSET", "5", deployment="adder")
        c.env.set(project, "TOKEN", SECRET, secret=True, deployment="adder", version="v1")
        c.pipelines.create(project, "pipe", input_fields=["n:int"], output_fields=["m:int"])
        c.pipelines.create_version(
            project,
            "pipe",
            "v1",
            objects=[{"name": "o", "reference_name": "adder", "version": "v1"}],
            attachments=[
                {
                    "destination_name": "o",
                    "sources": [
                        {
                            "source_name": "pipeline_start",
                            "mapping": [{"source_field_name": "n", "destination_field_name": "n"}],
                        }
                    ],
                },
                {
                    "destination_name": "pipeline_end",
                    "sources": [
                        {"source_name": "o", "mapping": [{"source_field_name": "m", "destination_field_name": "m"}]}
                    ],
                },
            ],
        )
    return project


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
        assert SECRET not in result.stdout + result.stderr and NEW_SECRET not in result.stdout + result.stderr
        return result

    return run


@pytest.fixture(scope="module")
def exported(served, source, tmp_path_factory) -> Path:
    """``modelharbor export SOURCE -o …`` once for the module."""
    target = tmp_path_factory.mktemp("exported") / "src.zip"
    env = served.env(tmp_path_factory.mktemp("state"))
    result = CliRunner().invoke(app, ["export", source, "-o", str(target)], env=env)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert result.stdout.splitlines()[0] == str(target)
    assert f"sha256: {hashlib.sha256(target.read_bytes()).hexdigest()}" in result.stdout
    assert "export: completed" in result.stderr
    return target


def project_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def wait_built(client: Client, project: str, deployment: str = "adder", version: str = "v1") -> None:
    v = client.deployments.version(project, deployment, version)
    rev = client.deployments.wait_for_revision(project, deployment, version, v.latest_revision, timeout=120)
    assert rev.status == "success", rev


def test_export_then_import_with_yes_and_a_secret(cli, client, source, exported):
    data = exported.read_bytes()
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert any(n.endswith("deployments/deployment_adder/versions/deployment_adder_version_v1.zip") for n in names)
    assert any(n.endswith("pipelines/pipeline_pipe/pipeline_pipe.yaml") for n in names)
    assert SECRET.encode() not in data
    listed = cli("exports", "list", source).stdout
    assert "completed" in listed and "1 export(s)" in listed
    (made,) = json.loads(cli("exports", "list", source, "--json").stdout)
    assert made["status"] == "completed" and made["id"] in listed  # the full id in the table

    dst = project_name("dst")
    client.projects.create(dst)
    result = cli("import", dst, str(exported), "--yes", "--secret", f"TOKEN={NEW_SECRET}")
    assert "src.zip holds:" in result.stdout
    assert "deployment adder: variables OFFSET" in result.stdout
    assert "version v1: environment" in result.stdout and "TOKEN (secret, needs a value)" in result.stdout
    assert "pipeline pipe: versions v1" in result.stdout and "project variables: A" in result.stdout
    assert f"imported into {dst}: 1 deployment(s) with 1 version(s), 1 pipeline(s)" in result.stdout
    assert "import: completed" in result.stderr
    assert [d.name for d in client.deployments.list(dst)] == ["adder"]
    assert [p.name for p in client.pipelines.list(dst)] == ["pipe"]
    (token,) = [e for e in client.env.list(dst, deployment="adder", version="v1") if e.name == "TOKEN"]
    assert token.secret is True and token.value is None
    wait_built(client, dst)
    answer = client.deployments.predict(dst, "adder", {"n": 1})
    assert answer.result == {"m": 6, "token": sha(NEW_SECRET)}  # the re-supplied secret, the exported OFFSET
    imports = cli("imports", "list", dst).stdout
    assert "completed" in imports and "1 import(s)" in imports
    assert [i["status"] for i in json.loads(cli("imports", "list", dst, "--json").stdout)] == ["completed"]
    assert not [
        f for f in client.files.list(limit=1000, include_internal=True).items if f.context == "project-import-upload"
    ]

    # importing the same zip again: everything clashes, the import fails with the reason, nothing changes
    again = cli("import", dst, str(exported), "--yes", "--secret", f"adder/v1/TOKEN={NEW_SECRET}", code=1)
    assert f"Already in project '{dst}'" in again.stderr and "deployment 'adder'" in again.stderr
    assert [d.name for d in client.deployments.list(dst)] == ["adder"]
    assert "failed" in cli("imports", "list", dst).stdout


def test_values_are_needed_and_confirmation_is_asked(cli, client, exported):
    dst = project_name("need")
    client.projects.create(dst)
    result = cli("import", dst, str(exported), "--yes", code=1)
    assert "these variables need a value: TOKEN (deployment adder version v1)" in result.stderr
    assert "--secret" in result.stderr and "nothing was imported" in result.stderr
    result = cli("import", dst, str(exported), "--secret", f"TOKEN={NEW_SECRET}", code=1)
    assert "pass --yes" in result.stderr and "nothing was imported" in result.stderr
    assert client.transfer.imports(dst) == []  # declined imports are deleted
    assert client.deployments.list(dst) == []
    warned = cli("import", dst, str(exported), "-y", "--secret", f"adder/TOKEN={NEW_SECRET}", "--secret", "NOPE=1")
    assert "--secret NOPE=… matches no variable" in warned.stderr
    wait_built(client, dst)
    assert client.deployments.predict(dst, "adder", {"n": 2}).result["token"] == sha(NEW_SECRET)
    created = project_name("made")
    cli("import", created, str(exported), "--create", "--yes", "--secret", f"TOKEN={NEW_SECRET}")
    assert [d.name for d in client.deployments.list(created)] == ["adder"]
    cli("import", dst, str(exported), "--secret", "no-equals-sign", code=2)
    cli("import", dst, str(exported), "--secret", "a/b/c/TOKEN=x", code=2)


def test_a_broken_zip_fails_with_the_servers_reason(cli, client, tmp_path):
    dst = project_name("broken")
    client.projects.create(dst)
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK\x03\x04 this is not really a zip" * 100)
    result = cli("import", dst, str(junk), "--yes", code=1)
    assert "error: import" in result.stderr and "failed:" in result.stderr and "zip" in result.stderr
    (imp,) = client.transfer.imports(dst)
    assert imp.status == "failed" and imp.error_message in " ".join(result.stderr.split())
    half = tmp_path / "half.zip"
    with zipfile.ZipFile(half, "w") as zf:
        zf.writestr("export/readme.txt", "no info.yaml here")
    result = cli("import", dst, str(half), "--yes", code=1)
    assert "no info.yaml" in result.stderr
    missing = cli("import", "no-such-project", str(half), "--yes", code=1)
    assert "`modelharbor projects create no-such-project`" in missing.stderr  # refused before any byte was sent
    assert not client.uploads.list(name="half.zip")
    cli("import", dst, str(tmp_path / "missing.zip"), code=2)


def test_export_selection_download_resume_and_delete(cli, client, source, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    result = cli("export", source, "--deployment", "adder:v1", "--no-packages", "-o", str(out_dir))
    (path,) = out_dir.iterdir()
    assert path.name.startswith(f"export_{source}_") and path.suffix == ".zip"
    names = zipfile.ZipFile(path).namelist()
    assert not any(n.endswith("_version_v1.zip") for n in names)  # no packages
    assert any(n.endswith("deployment_adder_version_v1.yaml") for n in names)
    assert not any("/pipelines/" in n or n.endswith("project_environment_variables.yaml") for n in names)
    export_id = next(e.id for e in client.transfer.exports(source) if not e.packages)
    detail = client.transfer.get_export(source, export_id)
    assert detail.deployments["adder"]["environment_variables"] == {"OFFSET": {"include_value": True}}
    assert result.stdout.splitlines()[0] == str(path)

    # a download that stopped half-way resumes; a .part with other bytes is fetched anew; both are verified
    full = path.read_bytes()
    target = tmp_path / "again.zip"
    Path(str(target) + ".part").write_bytes(full[: len(full) // 2])
    cli("exports", "download", source, export_id, "-o", str(target))
    assert target.read_bytes() == full
    Path(str(target) + ".part").write_bytes(b"\x00" * (len(full) - 10))
    target.unlink()
    cli("exports", "download", source, export_id, "-o", str(target))
    assert target.read_bytes() == full
    cli("exports", "download", source, "nope", code=1)

    cli("export", source, "--all", "--deployment", "adder", code=2)
    cli("export", source, "--deployment", "adder:", code=2)
    missing = cli("export", source, "--deployment", "adder:v9", code=1)
    assert "no version 'v9'" in missing.stderr
    cli("export", source, "--pipeline", "nope", code=1)
    cli("export", "no-such-project", code=1)
    cli("exports", "delete", source, export_id)
    with pytest.raises(HarborClientError) as exc:
        client.transfer.get_export(source, export_id)
    assert exc.value.status == 404


def test_sdk_export_and_import_zip(client, source, tmp_path):
    e, path = client.transfer.export(source, tmp_path, client.transfer.export_selection(source, {"adder": None}))
    assert e.status == "completed" and path.read_bytes() and hashlib.sha256(path.read_bytes()).hexdigest() == e.sha256
    dst = project_name("sdk")
    client.projects.create(dst)
    seen: list[dict] = []

    def confirm(imp) -> dict:
        seen.append(imp)
        needed = missing_values(imp)
        assert [(v["deployment"], v["version"], v["name"], v["secret"]) for v in needed] == [
            ("adder", "v1", "TOKEN", True)
        ]
        return confirmation_body(imp, {("adder", "v1", "TOKEN"): NEW_SECRET})

    imp = client.transfer.import_zip(dst, path, confirm=confirm)
    assert imp.status == "completed" and seen and list(imp.deployments) == ["adder"]
    declined = project_name("declined")
    client.projects.create(declined)
    with pytest.raises(HarborClientError) as exc:
        client.transfer.import_zip(declined, path, confirm=lambda imp: None)
    assert exc.value.code == "IMPORT_DECLINED" and client.transfer.imports(declined) == []
    with pytest.raises(HarborClientError) as exc:
        client.transfer.import_zip(declined, path, skip_confirmation=True)  # the secret has no value: it fails
    assert exc.value.code == "IMPORT_FAILED" and "TOKEN" in exc.value.message


def test_a_terminal_is_asked_for_the_secret_without_echoing_it(served, client, exported, tmp_path):
    dst = project_name("tty")
    client.projects.create(dst)
    env = served.env(tmp_path / "state", TERM="xterm")
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelharbor", "import", dst, str(exported)],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env=env,
        close_fds=True,
        start_new_session=True,  # no controlling terminal: the prompt uses this pty, not the one running the tests
    )
    os.close(secondary)
    seen = b""

    def expect(text: bytes, timeout: float = 120) -> None:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while text not in seen:
            assert time.monotonic() < deadline and proc.poll() is None, seen.decode(errors="replace")
            ready, _, _ = select.select([primary], [], [], 0.5)
            if ready:
                try:
                    seen += os.read(primary, 65536)
                except OSError:
                    break

    try:
        # the blank after the colon is written once echo is off (input sent earlier would be flushed, and echoed)
        expect(b"value of secret TOKEN (deployment adder version v1): ")
        os.write(primary, NEW_SECRET.encode() + b"\n")
        expect(b"import all this into")
        os.write(primary, b"y\n")
        expect(b"imported into")
        assert proc.wait(60) == 0
        with contextlib.suppress(OSError):
            while select.select([primary], [], [], 0.2)[0]:
                chunk = os.read(primary, 65536)
                if not chunk:
                    break
                seen += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(primary)
    assert NEW_SECRET.encode() not in seen and SECRET.encode() not in seen  # never echoed, never printed
    wait_built(client, dst)
    assert client.deployments.predict(dst, "adder", {"n": 0}).result == {"m": 5, "token": sha(NEW_SECRET)}
