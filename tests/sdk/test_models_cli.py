"""``modelharbor models …`` and the SDK's registry methods against a real ``modelharbor serve`` process: register a
real MLflow model directory, load it with the real ``mlflow`` client, download it back (resuming), and the rest."""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from modelharbor.cli import app
from modelharbor.sdk import HarborClientError

MiB = 1024 * 1024
mlflow = pytest.importorskip("mlflow")


def _sha(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _tree(root: Path) -> dict[str, str]:
    """relative path → SHA-256 of every file under ``root`` (``.part`` files included, to catch leftovers)."""
    return {p.relative_to(root).as_posix(): _sha(p) for p in sorted(root.rglob("*")) if p.is_file()}


def _random(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left:
            piece = os.urandom(min(4 * MiB, left))
            f.write(piece)
            left -= len(piece)


@pytest.fixture
def cli(harbor, tmp_path):
    runner, env = CliRunner(), harbor.env(tmp_path / "state")

    def run(*args: str, code: int = 0):
        result = runner.invoke(app, ["models", *args], env=env)
        assert result.exit_code == code, (args, result.output, result.exception)
        return result

    return run


@pytest.fixture
def sklearn_model(tmp_path):
    """A real MLflow model directory (mlflow.sklearn.save_model of a small LogisticRegression) and its data."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    X = rng.normal(size=(80, 4))
    y = (X[:, 0] - X[:, 2] > 0).astype(int)
    model = LogisticRegression(max_iter=200).fit(X, y)
    path = tmp_path / "iris model"
    mlflow.sklearn.save_model(model, str(path))
    assert (path / "MLmodel").is_file()
    return path, model, X


@pytest.fixture
def mlflow_env(harbor, monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", harbor.url)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", harbor.key)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    mlflow.set_tracking_uri(harbor.url)
    yield


def test_register_an_mlflow_model_load_it_with_mlflow_and_download_it(cli, client, sklearn_model, mlflow_env, tmp_path):
    src, model, X = sklearn_model
    _random(src / "extra" / "weights.bin", 9 * MiB + 7)  # more than one chunk of 4 MiB
    (src / "extra" / "empty.txt").write_bytes(b"")
    name = f"iris lr {uuid.uuid4().hex[:6]}"

    made = cli(
        "register",
        name,
        str(src),
        *("--description", "logistic [regression]", "--tag", "team=ml", "--alias", "champion"),
        *("--chunk-size", "4MiB"),
    )
    assert f"registered {name} version 1" in made.stdout and "source: models:/m-" in made.stdout
    assert "aliases: champion" in made.stdout

    # the real mlflow client loads what the CLI registered, by version and by alias
    loaded = mlflow.pyfunc.load_model(f"models:/{name}/1")
    np.testing.assert_array_equal(loaded.predict(X[:10]), model.predict(X[:10]))
    by_alias = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    np.testing.assert_array_equal(by_alias.predict(X[:5]), model.predict(X[:5]))
    mv = mlflow.MlflowClient().get_model_version(name, "1")
    assert mv.description == "logistic [regression]" and mv.tags == {"team": "ml"}

    # back down again: every file, same bytes, same paths
    dest = tmp_path / "out"
    got = cli("download", name, "@champion", "-o", str(dest))
    want = _tree(src)
    assert _tree(dest) == want and len(want) >= 5
    assert f"{len(want)} file(s)" in got.stdout and f"{len(want)} downloaded" in got.stdout
    again = cli("download", name, "1", "-o", str(dest))  # everything already there: nothing fetched
    assert "0 downloaded" in again.stdout and f"{len(want)} already complete" in again.stdout
    assert _tree(dest) == want

    # the tables
    listed = cli("list", "--name", name.upper())
    assert name in listed.stdout and "champion: 1" in listed.stdout and "1 model(s)" in listed.stdout
    assert "0 model(s)" in cli("list", "--tag", "team=ml", "--name", name).stdout  # that tag is the version's
    shown = cli("show", name)
    assert f"name: {name}" in shown.stdout and "alias: champion -> version 1" in shown.stdout
    versions = cli("versions", name)
    assert "models:/m-" in versions.stdout and "1 version(s)" in versions.stdout
    files = client.models.files(name, 1)
    assert sorted(f.path for f in files) == sorted(want)
    assert {f.path: f.sha256 for f in files} == want


def test_versions_aliases_stages_and_errors(cli, client, tmp_path):
    name = f"tiny {uuid.uuid4().hex[:6]}"
    one = tmp_path / "model.bin"
    one.write_bytes(b"version one")
    assert f"registered {name} version 1" in cli("register", name, str(one)).stdout
    one.write_bytes(b"version two!")
    assert f"registered {name} version 2" in cli("register", name, str(one), "--no-create").stdout

    assert "version 1: stage Staging" in cli("stage", name, "1", "staging").stdout
    assert "version 2: stage Staging" in cli("stage", name, "2", "Staging", "--archive-existing").stdout
    assert client.models.version(name, 1).current_stage == "Archived"
    assert "Invalid Model Version stage" in cli("stage", name, "1", "Bogus", code=1).stderr

    assert "version 1: stage Archived, aliases prod" in cli("alias", name, "prod", "1").stdout
    assert f"{name} version 1" in cli("alias", name, "prod").stdout
    assert "version 2: stage Staging, aliases prod" in cli("alias", name, "prod", "2").stdout
    assert "removed alias prod" in cli("alias", name, "prod", "--delete").stdout
    assert "not found" in cli("alias", name, "prod", code=1).stderr
    assert "reserved" in cli("alias", name, "latest", "1", code=1).stderr

    # a single file registers under its own name; the newest version is the default download
    dest = tmp_path / "dl"
    cli("download", name, "-o", str(dest))
    assert (dest / "model.bin").read_bytes() == b"version two!"
    cli("download", name, "1", "-o", str(tmp_path / "v1"))
    assert (tmp_path / "v1" / "model.bin").read_bytes() == b"version one"

    assert "not found" in cli("register", f"absent {uuid.uuid4().hex}", str(one), "--no-create", code=1).stderr
    assert "cannot contain" in cli("register", "a:b", str(one), code=1).stderr
    assert "not found" in cli("show", f"absent {uuid.uuid4().hex}", code=1).stderr
    assert "not found" in cli("download", name, "99", "-o", str(tmp_path / "x"), code=1).stderr
    assert "not found" in cli("download", name, "@nobody", "-o", str(tmp_path / "x"), code=1).stderr
    assert "not a version" in cli("download", name, "two", code=2).output
    assert "KEY=VALUE" in cli("register", name, str(one), "--tag", "novalue", code=2).output
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no files" in cli("register", name, str(empty), code=1).stderr
    with pytest.raises(HarborClientError) as exc:
        client.models.get("a/b")
    assert exc.value.code == "INVALID_INPUT"


def test_an_interrupted_download_resumes(client, tmp_path):
    name = f"resume {uuid.uuid4().hex[:6]}"
    src = tmp_path / "src"
    _random(src / "a.bin", 12 * MiB + 5)
    _random(src / "b" / "b.bin", 6 * MiB)
    (src / "c.txt").write_text("small")
    client.models.register(name, src, chunk_size=4 * MiB, state_dir=tmp_path / "state")
    want = _tree(src)
    dest = tmp_path / "dest"

    class Stop(Exception):
        pass

    def stop_midway(done: int, total: int) -> None:
        if done > 8 * MiB:
            raise Stop

    with pytest.raises(Stop):
        client.models.download(name, None, dest, parallel=1, progress=stop_midway)
    parts = {p.name: p.stat().st_size for p in dest.rglob("*.part")}
    assert parts and all(n > 0 for n in parts.values()), parts  # interrupted inside a file

    # a complete file is skipped, a corrupted one fetched again, the .part resumed from where it stopped
    (dest / "c.txt").parent.mkdir(parents=True, exist_ok=True)
    (dest / "c.txt").write_text("small")
    reports: list[int] = []
    result = client.models.download(name, None, dest, parallel=1, progress=lambda d, t: reports.append(d))
    assert reports[:2] == [0, parts["a.bin.part"]]  # a.bin went on from its .part
    assert _tree(dest) == want and not list(dest.rglob("*.part"))
    assert result.skipped >= 1 and result.downloaded + result.skipped == 3
    assert result.bytes == sum((src / p).stat().st_size for p in want)

    # with several files at a time, a failure stops the others too (at their next piece), and nothing writes on
    other = tmp_path / "other"
    with pytest.raises(Stop):
        client.models.download(name, None, other, parallel=3, progress=stop_midway)
    sizes = {p: p.stat().st_size for p in other.rglob("*")}
    time.sleep(0.3)
    assert {p: p.stat().st_size for p in other.rglob("*")} == sizes
    client.models.download(name, None, other, parallel=3)
    assert _tree(other) == want

    (dest / "b" / "b.bin").write_bytes(b"wrong size")
    (dest / "a.bin").write_bytes(os.urandom((src / "a.bin").stat().st_size))  # right size, wrong bytes
    result = client.models.download(name, None, dest)
    assert _tree(dest) == want and result.downloaded == 2 and result.skipped == 1


def test_an_interrupted_registration_resumes(client, tmp_path):
    name = f"reg {uuid.uuid4().hex[:6]}"
    src = tmp_path / "src"
    _random(src / "big.bin", 10 * MiB)
    for i in range(6):
        (src / "small" / f"{i}.txt").parent.mkdir(parents=True, exist_ok=True)
        (src / "small" / f"{i}.txt").write_text(f"file {i}")
    state = tmp_path / "state"

    class Stop(Exception):
        pass

    def stop_after_big(done: int, total: int) -> None:
        if done >= 10 * MiB + 3:
            raise Stop

    with pytest.raises(Stop):
        client.models.register(name, src, chunk_size=4 * MiB, parallel=2, state_dir=state, progress=stop_after_big)
    with pytest.raises(HarborClientError):
        client.models.get(name)  # nothing registered yet

    plans: list[tuple[int, int, int]] = []
    v = client.models.register(
        name, src, chunk_size=4 * MiB, state_dir=state, on_plan=lambda *a: plans.append(a), description="resumed"
    )
    assert v.version == 1 and v.description == "resumed"
    files, total, reused = plans[0]
    assert files == 7 and reused >= 10 * MiB, plans  # the big file was not sent again
    assert not list(state.glob("register-*.json"))
    assert {f.path: f.sha256 for f in client.models.files(name, 1)} == _tree(src)
    # a failed registration keeps what was uploaded for the next try
    with pytest.raises(HarborClientError) as exc:
        client.models.register(name, src, state_dir=state, description="x" * 1_000_001)
    assert exc.value.status == 400 and list(state.glob("register-*.json"))
    plans.clear()
    v2 = client.models.register(name, src, state_dir=state, on_plan=lambda *a: plans.append(a))
    assert v2.version == 2 and plans[0][2] == plans[0][1]  # every byte reused


def test_tags_json_and_deletes(cli, client, tmp_path):
    name = f"del {uuid.uuid4().hex[:6]}"
    one = tmp_path / "m.bin"
    one.write_bytes(b"one")
    made = cli("register", name, str(one), "--tag", "team=ml", "--tag", "kind=tiny", "--json")
    assert json.loads(made.stdout)["tags"] == {"team": "ml", "kind": "tiny"}
    cli("register", name, str(one))
    table = cli("versions", name).stdout
    assert "kind=tiny, team=ml" in table  # a version's tags are shown
    versions = json.loads(cli("versions", name, "--json").stdout)
    assert [(v["version"], v["tags"]) for v in versions] == [(2, {}), (1, {"team": "ml", "kind": "tiny"})]
    assert json.loads(cli("show", name, "--json").stdout)["name"] == name
    assert name in [m["name"] for m in json.loads(cli("list", "--name", name, "--json").stdout)]

    # a bad name is refused before any byte is sent
    before = client.files.list(limit=1, include_internal=True).total
    refused = cli("register", "bad/name", str(tmp_path), code=1)
    assert "Invalid model name 'bad/name'" in refused.stderr and "file(s)" not in refused.stderr
    assert client.files.list(limit=1, include_internal=True).total == before

    assert f"deleted {name} version 1" in cli("delete-version", name, "1").stdout
    assert [v.version for v in client.models.versions(name).versions] == [2]
    assert "not found" in cli("delete-version", name, "1", code=1).stderr
    assert "--yes" in cli("delete", name, code=2).stderr  # no terminal: no silent delete
    assert "1 version(s)" in cli("delete", name, "--yes").stdout
    with pytest.raises(HarborClientError) as exc:
        client.models.get(name)
    assert exc.value.status == 404
