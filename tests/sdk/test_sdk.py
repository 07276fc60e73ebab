"""Uploads and downloads with the SDK (``client.files``, ``client.uploads``) and the CLI against a real ``modelharbor
serve`` process (see conftest.py): resumable, parallel, verified; resuming whatever the chunk size."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from modelharbor.cli import app
from modelharbor.sdk import HarborClientError
from modelharbor.sdk.cli import parse_size

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


def test_upload_download_list_link_delete(client, harbor, tmp_path):
    src = tmp_path / f"model-{uuid.uuid4().hex[:6]}.bin"
    sha = _random_file(src, 40 * MiB + 12345)
    state_dir = tmp_path / "state"
    seen: list[tuple[int, int]] = []

    record = client.files.upload(
        src, chunk_size=4 * MiB, parallel=4, state_dir=state_dir, progress=lambda d, t: seen.append((d, t))
    )
    assert record.sha256 == sha and record.size == src.stat().st_size and record.name == src.name
    assert seen[-1] == (src.stat().st_size, src.stat().st_size)
    assert not list(state_dir.glob("*.json")), "the state file is removed after a successful upload"

    out_dir = tmp_path / "out"
    out_dir.mkdir()
    got = client.files.download(record.id, out_dir)
    assert got == out_dir / src.name
    assert got.read_bytes() == src.read_bytes()
    assert not (out_dir / (src.name + ".part")).exists()

    assert record.id in [f.id for f in client.files.list(limit=1000).items]
    assert client.files.get(record.id).sha256 == sha

    link = client.files.link(record.id, expires_in=120)
    resp = httpx.get(link.url, timeout=30)  # no Authorization header
    assert resp.status_code == 200
    assert hashlib.sha256(resp.content).hexdigest() == sha

    client.files.delete(record.id)
    with pytest.raises(HarborClientError) as exc:
        client.files.get(record.id)
    assert exc.value.status == 404 and record.id in exc.value.message


def test_cli_upload_resumes_after_kill(harbor, client, tmp_path):
    name = f"big-{uuid.uuid4().hex[:8]}.bin"
    src = tmp_path / name
    size = 64 * MiB
    sha = _random_file(src, size)
    env = harbor.env(tmp_path / "state")
    cmd = [sys.executable, "-m", "modelharbor", "upload", str(src), "--chunk-size", "1MiB", "--parallel", "2"]

    first = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    session_id, held = None, 0
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline and first.poll() is None:
            if session_id is None:
                found = client.uploads.list(name=name, size=size)
                session_id = found[0].id if found else None
            if session_id is not None:
                held = client.uploads.get(session_id).received_bytes
                if 0 < held < size:
                    first.kill()  # SIGKILL: no chance to clean up
                    break
            time.sleep(0.005)
    finally:
        if first.poll() is None:
            first.kill()
        first.communicate()
    assert first.returncode == -9, "the first upload finished before it could be interrupted"
    assert session_id and 0 < held < size
    assert len(list((tmp_path / "state").glob("*.json"))) == 1, "the state file survives the kill"

    second = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    m = re.search(r"resuming upload (\S+): (\d+) of (\d+) chunks already on the server, sending (\d+)", second.stderr)
    assert m, second.stderr
    assert m.group(1) == session_id
    already, total, sending = int(m.group(2)), int(m.group(3)), int(m.group(4))
    assert total == 64 and already >= held // MiB and already >= 1 and sending == total - already
    assert f"sha256: {sha}" in second.stdout and f"size: {size}" in second.stdout
    assert not list((tmp_path / "state").glob("*.json"))
    assert client.uploads.get(session_id).state == "completed"

    file_id = re.search(r"id: (\S+)", second.stdout).group(1)
    got = client.files.download(file_id, tmp_path / "copy.bin")
    assert _sha(got) == sha


def test_download_resumes_part_file(client, tmp_path):
    src = tmp_path / "weights.bin"
    sha = _random_file(src, 6 * MiB + 7)
    record = client.files.upload(src, chunk_size=2 * MiB, state_dir=tmp_path / "state")
    data = src.read_bytes()

    dest = tmp_path / "copy.bin"
    part = tmp_path / "copy.bin.part"
    part.write_bytes(data[: 3 * MiB + 5])
    calls: list[tuple[int, int]] = []
    assert client.files.download(record.id, dest, progress=lambda d, t: calls.append((d, t))) == dest
    assert calls[0] == (3 * MiB + 5, len(data)), "the download started from the bytes already in .part"
    assert min(d for d, _ in calls) == 3 * MiB + 5, "nothing before the .part's end was fetched again"
    assert dest.read_bytes() == data and not part.exists()

    # a .part holding other bytes: the hash check catches it and the download starts over
    dest.unlink()
    part.write_bytes(b"\0" * MiB)
    assert _sha(client.files.download(record.id, dest)) == sha
    assert not part.exists()

    # a .part longer than the file is discarded
    dest.unlink()
    part.write_bytes(data + b"extra")
    assert _sha(client.files.download(record.id, dest)) == sha


def test_zero_byte_file(client, harbor, tmp_path):
    src = tmp_path / "empty.txt"
    src.write_bytes(b"")
    record = client.files.upload(src, state_dir=tmp_path / "state")
    assert record.size == 0 and record.sha256 == hashlib.sha256(b"").hexdigest()
    got = client.files.download(record.id, tmp_path / "out.txt")
    assert got.read_bytes() == b""

    result = CliRunner().invoke(app, ["upload", str(src)], env=harbor.env(tmp_path / "state2"))
    assert result.exit_code == 0, result.output
    assert "size: 0" in result.stdout


def test_cli_files_commands(harbor, tmp_path):
    src = tmp_path / "small.bin"
    sha = _random_file(src, 300_000)
    env = harbor.env(tmp_path / "state")
    runner = CliRunner()
    up = runner.invoke(app, ["upload", str(src), "--chunk-size", "100k", "--context", "demo"], env=env)
    assert up.exit_code == 0, up.output
    file_id = re.search(r"id: (\S+)", up.stdout).group(1)
    assert f"sha256: {sha}" in up.stdout

    listed = runner.invoke(app, ["files", "list", "--limit", "1000"], env=env)
    assert listed.exit_code == 0 and file_id in listed.stdout and "small.bin" in listed.stdout

    link = runner.invoke(app, ["files", "link", file_id, "--expires-in", "60"], env=env)
    assert link.exit_code == 0, link.output
    assert hashlib.sha256(httpx.get(link.stdout.strip()).content).hexdigest() == sha

    down = runner.invoke(app, ["download", file_id, "-o", str(tmp_path / "dl") + "/"], env=env)
    assert down.exit_code == 0, down.output
    assert _sha(tmp_path / "dl" / "small.bin") == sha

    deleted = runner.invoke(app, ["files", "delete", file_id], env=env)
    assert deleted.exit_code == 0 and f"deleted {file_id}" in deleted.stdout
    again = runner.invoke(app, ["files", "delete", file_id], env=env)
    assert again.exit_code == 1 and "not found" in again.stderr


def test_cli_errors(harbor, tmp_path):
    src = tmp_path / "f.bin"
    src.write_bytes(b"hello")
    runner = CliRunner()

    no_key = runner.invoke(app, ["files", "list"], env={**harbor.env(tmp_path), "MODELHARBOR_API_KEY": ""})
    assert no_key.exit_code == 2
    assert "set MODELHARBOR_API_KEY" in no_key.stderr

    wrong = runner.invoke(app, ["upload", str(src)], env={**harbor.env(tmp_path), "MODELHARBOR_API_KEY": "nope"})
    assert wrong.exit_code == 1
    assert "unknown API key" in wrong.stderr  # the server's 401 message
    assert "Traceback" not in wrong.output

    # also as a real process: non-zero exit, one line of guidance, no traceback
    proc = subprocess.run(
        [sys.executable, "-m", "modelharbor", "files", "list", "--key", "wrong-key"],
        env=harbor.env(tmp_path),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1 and "unknown API key" in proc.stderr and "Traceback" not in proc.stderr

    unreachable = runner.invoke(app, ["files", "list", "--url", "http://127.0.0.1:9"], env=harbor.env(tmp_path))
    assert unreachable.exit_code == 1 and "cannot reach ModelHarbor" in unreachable.stderr

    bad_size = runner.invoke(app, ["upload", str(src), "--chunk-size", "12XB"], env=harbor.env(tmp_path))
    assert bad_size.exit_code == 2


def test_parse_size():
    assert parse_size("64MiB") == 64 * MiB
    assert parse_size("8M") == 8 * MiB
    assert parse_size("1048576") == MiB
    assert parse_size("512k") == 512 * 1024
    assert parse_size("1.5GiB") == 3 * 512 * MiB
    for bad in ("", "0", "-1", "1.5", "10 parsecs"):
        with pytest.raises(ValueError):
            parse_size(bad)


class _Crash(Exception):
    pass


def test_interrupted_upload_resumes_or_starts_over(client, tmp_path):
    src = tmp_path / "resume.bin"
    sha = _random_file(src, 12 * MiB)
    state_dir = tmp_path / "state"
    sessions: list[tuple[str, bool, list[int]]] = []
    fresh = {"hash_first_over": None}  # the same bytes again are to be sent again (no deduplication), to resume

    def crash_midway(done: int, total: int) -> None:
        if done >= 5 * MiB:
            raise _Crash()

    def on_session(session, resumed, to_send):
        sessions.append((session.id, resumed, to_send))

    with pytest.raises(_Crash):
        client.files.upload(
            src, chunk_size=MiB, parallel=3, state_dir=state_dir, progress=crash_midway, on_session=on_session, **fresh
        )
    first_id = sessions[-1][0]
    held = client.uploads.get(first_id)
    assert 0 < held.received_bytes < 12 * MiB

    # same process, run again: only the missing chunks travel
    record = client.files.upload(src, chunk_size=MiB, parallel=3, state_dir=state_dir, on_session=on_session, **fresh)
    assert record.sha256 == sha
    resumed_id, resumed, to_send = sessions[-1]
    assert resumed and resumed_id == first_id
    assert sorted(to_send) == held.missing_chunks

    # a state file naming a session the server no longer has open: a new session, no error
    with pytest.raises(_Crash):
        client.files.upload(
            src, chunk_size=MiB, parallel=2, state_dir=state_dir, progress=crash_midway, on_session=on_session, **fresh
        )
    stale_id = sessions[-1][0]
    client.uploads.abort(stale_id)
    record = client.files.upload(src, chunk_size=MiB, parallel=2, state_dir=state_dir, on_session=on_session, **fresh)
    assert record.sha256 == sha
    new_id, resumed, to_send = sessions[-1]
    assert new_id != stale_id and not resumed and len(to_send) == 12

    # a different chunk size resumes the same session, in the session's own chunks
    with pytest.raises(_Crash):
        client.files.upload(
            src, chunk_size=MiB, state_dir=state_dir, progress=crash_midway, on_session=on_session, **fresh
        )
    crashed_id = sessions[-1][0]
    held = client.uploads.get(crashed_id)
    record = client.files.upload(src, chunk_size=3 * MiB, state_dir=state_dir, on_session=on_session, **fresh)
    resumed_id, resumed, to_send = sessions[-1]
    assert record.sha256 == sha and resumed and resumed_id == crashed_id
    assert sorted(to_send) == held.missing_chunks  # numbered in the session's 1 MiB chunks
