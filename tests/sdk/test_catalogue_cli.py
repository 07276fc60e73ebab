"""``modelharbor catalogue …`` and the SDK's catalogue methods against a real ``modelharbor serve`` process."""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelharbor.cli import app
from modelharbor.sdk import HarborClientError

MiB = 1024 * 1024


def _random_file(path: Path, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            piece = os.urandom(min(4 * MiB, left))
            f.write(piece)
            h.update(piece)
            left -= len(piece)
    return h.hexdigest()


def _sha(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@pytest.fixture
def cli(harbor, tmp_path):
    runner, env = CliRunner(), harbor.env(tmp_path / "state")

    def run(*args: str, code: int = 0):
        result = runner.invoke(app, ["catalogue", *args], env=env)
        assert result.exit_code == code, (args, result.output, result.exception)
        return result

    return run


def _create(cli, name: str, *extra: str) -> int:
    made = cli(
        "create",
        *("--name", name, "--url", f"https://example.com/{name}", "--domain", "ic", "--licence", "MIT"),
        *(extra or ("--framework", "1")),
    )
    return int(re.search(r"^pk: (\d+)$", made.stdout, re.MULTILINE).group(1))


def test_create_push_pull_round_trip(cli, client, tmp_path):
    name = f"resnet-{uuid.uuid4().hex[:8]}"
    made = cli(
        "create",
        *("--name", name, "--url", "https://example.com/r18", "--framework", "pytorch", "--domain", "ic"),
        *("--licence", "Apache 2.0", "--description", "an [example] model", "--metadata", '{"top1": 0.7}'),
    )
    pk = int(re.search(r"^pk: (\d+)$", made.stdout, re.MULTILINE).group(1))
    assert "framework: pytorch 1.2 (pk 3)" in made.stdout and "data: none" in made.stdout
    assert "description: an [example] model" in made.stdout  # no rich markup eaten

    listed = cli("list", "--name", name.upper())
    assert name in listed.stdout and "pytorch 1.2" in listed.stdout and "1 model(s)" in listed.stdout

    src = tmp_path / "weights.pth"
    sha = _random_file(src, 30 * MiB + 4321)
    pushed = cli("push-data", str(pk), str(src))
    assert f"sha256: {sha}" in pushed.stdout and f"size: {src.stat().st_size}" in pushed.stdout
    shown = cli("show", str(pk))
    assert f"sha256: {sha}" in shown.stdout and "30.0 MiB" in shown.stdout

    dest = tmp_path / "copy.pth"
    pulled = cli("pull-data", str(pk), "-o", str(dest))
    assert pulled.stdout.strip() == str(dest)
    assert _sha(dest) == sha and not (tmp_path / "copy.pth.part").exists()
    into_dir = tmp_path / "dl"
    cli("pull-data", str(pk), "-o", f"{into_dir}/")
    assert _sha(into_dir / "weights.pth") == sha  # named after the pushed file

    # an interrupted pull resumes its .part with a Range request
    data = src.read_bytes()
    part = tmp_path / "resumed.pth.part"
    part.write_bytes(data[: 11 * MiB + 3])
    cli("pull-data", str(pk), "-o", str(tmp_path / "resumed.pth"))
    assert _sha(tmp_path / "resumed.pth") == sha and not part.exists()

    part = tmp_path / "sdk.pth.part"
    part.write_bytes(data[: 17 * MiB])
    calls: list[tuple[int, int]] = []
    client.catalogue.pull_data(pk, tmp_path / "sdk.pth", progress=lambda d, t: calls.append((d, t)))
    assert calls[0] == (17 * MiB, len(data)) and min(d for d, _ in calls) == 17 * MiB, "fetched from the .part's end"
    assert _sha(tmp_path / "sdk.pth") == sha

    # a .part of other bytes is detected by the SHA-256 and fetched again
    part = tmp_path / "wrong.pth.part"
    part.write_bytes(os.urandom(5 * MiB))
    cli("pull-data", str(pk), "-o", str(tmp_path / "wrong.pth"))
    assert _sha(tmp_path / "wrong.pth") == sha


def test_push_data_from_an_uploaded_file(cli, client, tmp_path):
    pk = _create(cli, f"from-file-{uuid.uuid4().hex[:8]}")
    src = tmp_path / "w.bin"
    sha = _random_file(src, 3 * MiB + 1)
    record = client.files.upload(src, chunk_size=MiB, state_dir=tmp_path / "state")
    pushed = cli("push-data", str(pk), "--file-id", record.id)
    assert f"sha256: {sha}" in pushed.stdout
    model = client.catalogue.get(pk)
    assert model.data.sha256 == sha and model.data.file_id != record.id
    cli("pull-data", str(pk), "-o", str(tmp_path / "out.bin"))
    assert _sha(tmp_path / "out.bin") == sha

    assert cli("push-data", str(pk), "--file-id", "0" * 24, code=1).stderr.startswith("error:")
    assert "FILE or --file-id" in cli("push-data", str(pk), code=2).output
    assert "FILE or --file-id" in cli("push-data", str(pk), str(src), "--file-id", record.id, code=2).output


def test_delete_reinstate_and_hard_delete(cli, client, tmp_path):
    name = f"lifecycle-{uuid.uuid4().hex[:8]}"
    pk = _create(cli, name, "--framework", "yolo:v5")
    assert client.catalogue.get(pk).framework.version == "v5"
    src = tmp_path / "d.bin"
    _random_file(src, 1000)
    client.catalogue.push_data(pk, src)

    deleted = cli("delete", str(pk))
    assert f"deleted model {pk}" in deleted.stdout and "reinstate" in deleted.stdout
    assert name not in cli("list", "--name", name).stdout
    assert name in cli("list", "--all", "--name", name).stdout
    assert "deleted: " in cli("show", str(pk)).stdout

    assert f"reinstated model {pk}" in cli("reinstate", str(pk)).stdout
    assert name in cli("list", "--name", name).stdout and client.catalogue.get(pk).deletion_time is None

    assert "for good" in cli("delete", str(pk), "--hard").stdout
    assert "not found" in cli("show", str(pk), code=1).stderr
    assert "not found" in cli("reinstate", str(pk), code=1).stderr
    with pytest.raises(HarborClientError) as exc:
        client.catalogue.get(pk)
    assert exc.value.status == 404


def test_errors_print_the_server_message(cli, client, tmp_path):
    bad = cli(
        "create",
        *("--name", "x", "--url", "https://x", "--framework", "1", "--domain", "zz", "--licence", "Nope"),
        code=1,
    )
    assert "Object with name=zz does not exist." in bad.stderr and "--licence" in bad.stderr
    assert (
        "no framework 'nonesuch'"
        in cli(
            "create",
            *("--name", "x", "--url", "u", "--framework", "nonesuch", "--domain", "ic", "--licence", "MIT"),
            code=1,
        ).stderr
    )
    assert (
        "several versions"
        in cli(
            "create",
            *("--name", "x", "--url", "u", "--framework", "yolo", "--domain", "ic", "--licence", "MIT"),
            code=1,
        ).stderr
    )

    pk = _create(cli, f"empty-{uuid.uuid4().hex[:8]}")
    assert "has no data" in cli("pull-data", str(pk), "-o", str(tmp_path / "x"), code=1).stderr
    src = tmp_path / "s.bin"
    src.write_bytes(b"abc")
    assert "not found" in cli("push-data", "999999", str(src), code=1).stderr
    assert "not found" in cli("pull-data", "999999", code=1).stderr
    with pytest.raises(HarborClientError) as exc:
        client.catalogue.list(spec={"expressions": [{"type": "exact", "field": "colour", "value": 1}]})
    assert exc.value.code == "INVALID_FILTER" and "'colour'" in exc.value.message
