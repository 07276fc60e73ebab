"""The data directory is private: what a real server creates there is 0700 (folders) and 0600 (files), and a data
directory an older version left readable is tightened at start, with one warning line."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx
import pytest

from modelharbor.datadir import make_private
from modelharbor.settings import Settings
from tests.servers import first_admin, running_server

UNSET = {"MODELHARBOR_SECRET_KEY": "", "MODELHARBOR_ADMIN_USER": "", "MODELHARBOR_ADMIN_KEY": ""}


def _modes(data: Path) -> dict[str, int]:
    out = {".": stat.S_IMODE(data.stat().st_mode)}
    for path in data.rglob("*"):
        out[path.relative_to(data).as_posix()] = stat.S_IMODE(path.lstat().st_mode)
    return out


def test_everything_a_started_server_creates_is_private(tmp_path):
    # no secret key and no admin configured: the server generates DATA_DIR/secret_key and DATA_DIR/initial-admin.env
    with running_server(tmp_path, "unused", **UNSET) as url:
        key = first_admin(tmp_path)["MODELHARBOR_API_KEY"]
        with httpx.Client(base_url=url + "/api/v1", headers={"authorization": f"Bearer {key}"}) as c:
            assert c.post("/files", params={"name": "a.bin"}, content=b"single").status_code == 201
            up = c.post("/uploads", json={"name": "c.bin", "total_chunks": 2}).json()
            for n in range(2):
                assert c.put(f"/uploads/{up['id']}/chunks/{n}", content=b"chunk %d" % n).status_code == 200
            assert c.post(f"/uploads/{up['id']}/complete").status_code == 200
        modes = _modes(tmp_path / "data")  # while it runs: the database's -wal and -shm exist
    data = tmp_path / "data"
    for name in ("secret_key", "initial-admin.env", "modelharbor.db", "modelharbor.db-wal", "modelharbor.db-shm"):
        assert modes[name] == 0o600, (name, oct(modes[name]))
    blobs = [k for k in modes if k.startswith("blobs/")]
    assert any(k.startswith("blobs/objects/") for k in blobs) and any(k.startswith("blobs/uploads/") for k in blobs)
    for name, mode in modes.items():
        want = 0o700 if (data / name).is_dir() else 0o600
        assert mode == want, f"{name}: {mode:04o}, not {want:04o}"


def test_a_looser_data_directory_is_tightened_at_start_with_one_warning(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    (data / "secret_key").write_text("an older server's key")
    (data / "secret_key").chmod(0o644)
    (data / "initial-admin-key").write_text("mh_old\n")
    (data / "initial-admin-key").chmod(0o640)
    with running_server(tmp_path, "mh_perm_test_admin_key_0123456789", MODELHARBOR_SECRET_KEY=""):
        pass
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "secret_key").stat().st_mode) == 0o600
    assert stat.S_IMODE((data / "initial-admin-key").stat().st_mode) == 0o600
    assert stat.S_IMODE((data / "modelharbor.db").stat().st_mode) == 0o600
    log = (tmp_path / "server.log").read_text()
    lines = [line for line in log.splitlines() if "made it private" in line]
    assert len(lines) == 1 and lines[0].startswith("WARNING:"), log
    assert f"{data}: 0755 -> 0700" in lines[0] and "secret_key: 0644 -> 0600" in lines[0], lines[0]
    assert "initial-admin-key: 0640 -> 0600" in lines[0]

    with running_server(tmp_path, "mh_perm_test_admin_key_0123456789", MODELHARBOR_SECRET_KEY=""):
        pass  # already private: nothing to say the second time
    assert len([line for line in (tmp_path / "server.log").read_text().splitlines() if "made it private" in line]) == 1


@pytest.fixture
def restore_umask():
    old = os.umask(0o022)
    os.umask(old)
    yield
    os.umask(old)


def test_a_blob_folder_outside_the_data_directory_and_what_cannot_be_changed(
    tmp_path, restore_umask, monkeypatch, caplog
):
    blobs, data = tmp_path / "elsewhere" / "blobs", tmp_path / "data"
    blobs.mkdir(parents=True)
    blobs.chmod(0o775)
    settings = Settings(_env_file=None, data_dir=data, blob_url=str(blobs), secret_key="x")
    with caplog.at_level("WARNING", logger="modelharbor.datadir"):
        changes = make_private(settings)
    assert changes == [f"{blobs}: 0775 -> 0700"] and stat.S_IMODE(blobs.stat().st_mode) == 0o700
    assert stat.S_IMODE(data.stat().st_mode) == 0o700  # created under the private umask
    assert os.umask(0o077) == 0o077

    data.chmod(0o750)

    def refused(self, mode):
        raise PermissionError(1, "Operation not permitted", str(self))

    monkeypatch.setattr(Path, "chmod", refused)  # e.g. a folder another user owns
    caplog.clear()
    with caplog.at_level("WARNING", logger="modelharbor.datadir"):
        assert make_private(settings) == []  # the server starts anyway, and says what it could not do
    assert f"could not make {data} private (0750)" in caplog.text
