"""The SDK's sub-clients against a real server: typed objects (the native API's own schemas, open to fields a newer
server adds), the config file's order and permissions, names refused before any byte is sent, keys by prefix,
projects, users, and uploads that skip what the server holds."""

from __future__ import annotations

import hashlib
import os
import stat
import uuid
import warnings
from pathlib import Path

import pytest

from modelharbor.api.native import schemas
from modelharbor.sdk import Client, HarborClientError, InsecureConfigWarning, wire
from modelharbor.sdk import config as cfg

MiB = 1024 * 1024


def _random(path: Path, size: int) -> str:
    data = os.urandom(size)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


# --- configuration -----------------------------------------------------------------------------------------------
def _config(path: Path, default: str | None, **profiles: tuple[str, str | None]) -> Path:
    cfg.save(cfg.Config(path, default, {n: cfg.Profile(n, u, k) for n, (u, k) in profiles.items()}))
    return path


def test_resolution_order(tmp_path):
    path = _config(tmp_path / "c.toml", "a", a=("http://a:1", "key-a"), b=("http://b:2/", "key-b"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    env = {"MODELHARBOR_URL": "http://env:3", "MODELHARBOR_API_KEY": "key-env"}

    def resolve(*args, env=None, **kw):
        return cfg.resolve(*args, env=env or {}, path=path, **kw)

    got = resolve()
    assert (got.url, got.api_key, got.profile) == ("http://a:1", "key-a", "a")
    assert resolve(env={"MODELHARBOR_PROFILE": "b"}).api_key == "key-b"
    assert (resolve(env=env).url, resolve(env=env).api_key) == ("http://env:3", "key-env")  # env beats the default
    assert resolve(profile="b", env=env).api_key == "key-b"  # a profile asked for beats the environment
    assert resolve("http://x:4", "k").api_key == "k" and resolve("http://x:4", "k").profile is None
    assert resolve("http://x:4").api_key is None  # the default profile's key is not sent to another server
    assert resolve("http://a:1/").api_key == "key-a"  # the same server, however written
    with pytest.raises(HarborClientError) as exc:
        resolve(profile="nope")
    assert exc.value.code == "UNKNOWN_PROFILE" and "a, b" in exc.value.message
    assert cfg.resolve(env={}, path=tmp_path / "none.toml").url == cfg.DEFAULT_URL
    with pytest.raises(HarborClientError) as exc:
        resolve("ftp://nowhere")
    assert exc.value.code == "INVALID_URL"


def test_insecure_and_broken_config(tmp_path):
    path = _config(tmp_path / "c.toml", "a", a=("http://a:1", "key-a"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg.load(path)  # 0600: no warning
    path.chmod(0o640)
    with pytest.warns(InsecureConfigWarning, match="mode 0640"):
        cfg.load(path)
    path.chmod(0o600)
    path.write_text('[profiles.a]\nurl = "http://a:1"\napi_key = "quote \\" and \\\\ and é"\n')
    assert cfg.load(path).profiles["a"].api_key == 'quote " and \\ and é'
    _config(path, "a", a=("http://a:1", 'quote " and \\ and é\x7f'))
    assert cfg.load(path).profiles["a"].api_key == 'quote " and \\ and é\x7f'  # what save writes, load reads
    path.write_text("[profiles.a]\nnothing = 1\n")
    with pytest.raises(HarborClientError, match="profile 'a' has no url"):
        cfg.load(path)


# --- typed objects ----------------------------------------------------------------------------------------------
def test_answers_are_the_native_schemas_open_to_new_fields(client, tmp_path):
    me = client.me()
    assert isinstance(me, schemas.MeOut) and me.username == "admin"
    src = tmp_path / "typed.bin"
    sha = _random(src, 1000)
    f = client.files.upload(src, state_dir=tmp_path / "state")
    assert isinstance(f, schemas.FileOut) and f.sha256 == sha
    page = client.files.list(limit=1000)
    assert isinstance(page, schemas.FileList) and f.id in [x.id for x in page.items]
    detail = client.files.get(f.id)
    assert isinstance(detail, wire.FileDetail) and detail.size == 1000
    # a newer server's fields stay readable, in attributes and in the JSON
    newer = wire.File.model_validate({**f.model_dump(mode="json"), "internal": False, "colour": "blue"})
    assert newer.colour == "blue" and newer.model_dump()["internal"] is False
    client.files.delete(f.id)


# --- names and refusals before any byte is sent ------------------------------------------------------------------
def test_bad_names_are_refused_before_anything_is_sent(client, tmp_path):
    src = tmp_path / "model"
    src.mkdir()
    _random(src / "weights.bin", 2 * MiB)
    before = client.files.list(limit=1000, include_internal=True).total
    for bad, message in [("bad/name", "cannot contain '/'"), ("a:b", "cannot contain"), ("..", "'.' or '..'")]:
        with pytest.raises(HarborClientError, match=message) as exc:
            client.models.register(bad, src, state_dir=tmp_path / "state")
        assert exc.value.status == 0
    with pytest.raises(HarborClientError, match="reserved"):
        client.models.register("fine", src, aliases=["latest"], state_dir=tmp_path / "state")
    with pytest.raises(HarborClientError) as exc:
        client.models.register(f"absent-{uuid.uuid4().hex[:6]}", src, create_model=False, state_dir=tmp_path / "s")
    assert exc.value.status == 404
    with pytest.raises(HarborClientError, match="invalid deployment name"):
        client.deployments.deploy("fine", "Bad Name", src)
    with pytest.raises(HarborClientError, match="for deployments"):
        client.deployments.deploy("Bad_Project", "fine", src)
    with pytest.raises(HarborClientError, match="control characters"):
        client.files.upload(src / "weights.bin", name="a\nb")
    with pytest.raises(HarborClientError, match="not found") as exc:
        client.transfer.upload_for_import(f"nowhere-{uuid.uuid4().hex[:6]}", src / "weights.bin")
    assert "modelharbor projects create" in exc.value.message
    assert client.files.list(limit=1000, include_internal=True).total == before
    assert client.uploads.list(name="weights.bin") == []


# --- projects, keys, users ---------------------------------------------------------------------------------------
def test_projects(client, harbor):
    name = f"proj-{uuid.uuid4().hex[:6]}"
    made = client.projects.create(name, description="the first")
    assert isinstance(made, wire.Project) and made.owner_username == "admin"
    assert client.projects.get(name).id == made.id == client.projects.get(made.id).id
    assert name in [p.name for p in client.projects.list()]
    assert client.projects.find(f"no-{name}") is None
    with pytest.raises(HarborClientError, match="modelharbor projects create"):
        client.projects.get(f"no-{name}")
    with pytest.raises(HarborClientError, match="invalid project name"):
        client.projects.create("no spaces")
    client.projects.delete(name)
    assert client.projects.find(name) is None


def test_keys_by_id_or_prefix(client, harbor):
    a, b = client.keys.create("first"), client.keys.create("second", expires_in_days=30)
    assert a.key.startswith("mh_") and b.expires_at is not None
    listed = {k.id: k for k in client.keys.list()}
    assert a.id in listed and listed[a.id].key is None  # never the secret again
    with Client(harbor.url, a.key) as them:
        assert them.me().username == "admin"
    assert client.keys.revoke(a.id[:6]).id == a.id  # an unambiguous start of the id
    assert client.keys.revoke(b.prefix).id == b.id  # the prefix the tables show
    with pytest.raises(HarborClientError) as exc:
        client.keys.revoke("zzzz")
    assert exc.value.status == 404
    with Client(harbor.url, a.key) as them, pytest.raises(HarborClientError, match="revoked"):
        them.me()


def test_users(client, harbor):
    name = f"user-{uuid.uuid4().hex[:6]}"
    made = client.users.create(name, role="viewer", password="a long passphrase 1")
    assert isinstance(made, wire.User) and (made.role, made.has_password) == ("viewer", True)
    assert name in [u.username for u in client.users.list()]
    assert client.users.get(name).id == made.id
    client.users.set_password(name, "another long passphrase 2")
    key = client.keys.create("for them", username=name)
    assert key.user_id == made.id
    assert [k.id for k in client.keys.list(username=name)] == [key.id]
    client.users.delete(name)
    with pytest.raises(HarborClientError) as exc:
        client.users.get(name)
    assert exc.value.status == 404
    with pytest.raises(HarborClientError, match="unknown role"):
        client.users.create("x", role="king")


# --- uploads: bytes the server holds are not sent again -----------------------------------------------------------
def test_identical_bytes_are_not_sent_again(client, harbor, tmp_path):
    src = tmp_path / "twice.bin"
    sha = _random(src, 9 * MiB)
    first = client.files.upload(src, chunk_size=4 * MiB, state_dir=tmp_path / "s1")
    sent: list[int] = []
    sessions = []
    copy = tmp_path / "copy.bin"
    copy.write_bytes(src.read_bytes())
    again = client.files.upload(
        copy,
        chunk_size=MiB,
        state_dir=tmp_path / "s2",
        progress=lambda d, t: sent.append(d),
        on_session=lambda s, resumed, to_send: sessions.append((s, to_send)),
    )
    ((session, to_send),) = sessions
    assert session.state == "completed" and session.deduplicated and to_send == []
    assert again.sha256 == first.sha256 == sha and again.id != first.id and again.name == "copy.bin"
    small = tmp_path / "small.bin"
    small.write_bytes(src.read_bytes()[:MiB])
    assert client.files.upload(small, state_dir=tmp_path / "s3").size == MiB  # under the threshold: sent


def test_a_session_is_found_by_fingerprint_without_the_state_file(client, harbor, tmp_path):
    src = tmp_path / "found.bin"
    sha = _random(src, 6 * MiB)

    class Stop(Exception):
        pass

    def stop(done: int, total: int) -> None:
        if done >= 3 * MiB:
            raise Stop

    with pytest.raises(Stop):
        client.files.upload(src, chunk_size=MiB, parallel=1, state_dir=tmp_path / "gone", progress=stop)
    seen = []
    record = client.files.upload(
        src,
        chunk_size=2 * MiB,
        state_dir=tmp_path / "fresh",  # no state file: the server finds the session
        hash_first_over=None,
        on_session=lambda s, resumed, to_send: seen.append((s, resumed, to_send)),
    )
    ((session, resumed, to_send),) = seen
    assert resumed and session.chunk_size == MiB and len(to_send) < 6
    assert record.sha256 == sha
