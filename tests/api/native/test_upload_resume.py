"""Native API uploads that resume whatever the chunk size (fingerprints), declare their SHA-256, and finish without
a byte when the organisation holds the content; over the in-process app and over a real server."""

from __future__ import annotations

import hashlib
import os

import httpx
import pytest

from modelharbor.core.files import resume
from modelharbor.domain.principal import Role
from tests.api.native.test_uploads import Uploads, bearer, native_error
from tests.servers import running_server

MiB = 1 << 20


def fingerprint(data: bytes) -> str:
    return resume.fingerprint(len(data), data[:MiB], data[-MiB:])


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cut(data: bytes, chunk_size: int) -> list[bytes]:
    return [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)]


@pytest.fixture
def up(client, services) -> Uploads:
    return Uploads(client, services.settings.admin_key)


def test_a_client_with_another_chunk_size_resumes_by_the_sessions(up):
    data = os.urandom(2 * MiB + 12345)
    fp = fingerprint(data)
    first = up.started("weights.bin", 3, len(data), chunk_size=MiB, fingerprint=fp)
    assert (first["chunk_size"], first["fingerprint"], first["deduplicated"]) == (MiB, fp, False)
    up.put(first["id"], 1, cut(data, MiB)[1])  # then the first client died

    # a second client, whose default is 256 KiB, looks the file up
    query = {"name": "weights.bin", "size": len(data), "fingerprint": fp}
    found = up.client.get("/api/v1/uploads", params=query, headers=up.auth).json()
    assert [s["id"] for s in found] == [first["id"]]
    session = found[0]
    assert session["chunk_size"] == MiB and session["missing_chunks"] == [0, 2]
    theirs = cut(data, session["chunk_size"])
    for n in session["missing_chunks"]:
        up.put(session["id"], n, theirs[n])
    done = up.complete(session["id"]).json()
    assert done["file"]["sha256"] == sha(data) and up.content(done["file"]["id"]) == data

    wrong_size = up.chunk(up.started("x.bin", 2, 20, chunk_size=10)["id"], 0, b"x" * 7)
    native_error(wrong_size, 400, "CHUNK_SIZE_MISMATCH", chunk_size=10, expected_size=10, received_size=7)


def test_changed_bytes_do_not_find_the_session(up):
    data = os.urandom(3 * MiB)
    up.started("m.bin", 3, len(data), fingerprint=fingerprint(data))
    changed = data[:-1] + b"\0" if data[-1] else data[:-1] + b"\1"
    query = {"name": "m.bin", "size": len(data), "fingerprint": fingerprint(changed)}
    assert up.client.get("/api/v1/uploads", params=query, headers=up.auth).json() == []
    bad = up.client.get("/api/v1/uploads", params={"fingerprint": "xyz"}, headers=up.auth)
    native_error(bad, 400, "INVALID_INPUT")


def test_a_sha256_mismatch_is_refused_and_the_session_kept(up):
    data = os.urandom(1000)
    uid = up.started("h.bin", 1, 1000, sha256=sha(data))["id"]
    up.put(uid, 0, os.urandom(1000))
    err = native_error(up.complete(uid), 400, "SHA256_MISMATCH", expected_sha256=sha(data))
    assert "stays open" in err["message"]
    assert up.status(uid).json()["state"] == "open"
    up.put(uid, 0, data)
    assert up.complete(uid).json()["file"]["sha256"] == sha(data)


def test_held_content_completes_at_start_within_the_organisation_only(up, client, services, admin):
    data = os.urandom(40_000)
    held = up.whole(data, 2, name="first.bin")["file"]
    resp = up.start(name="second.bin", total_chunks=4, size=len(data), sha256=sha(data).upper())
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert (body["state"], body["deduplicated"], body["missing_chunks"]) == ("completed", True, [])
    assert body["file_id"] and body["file_id"] != held["id"]
    assert up.content(body["file_id"]) == data
    assert up.complete(body["id"]).json()["file"]["id"] == body["file_id"]

    services.identity.create_org(admin, "elsewhere")
    services.identity.create_user(admin, "eve")
    services.identity.move_user(admin, "eve", "elsewhere")
    eve = services.identity.principal_for("eve", "elsewhere")
    other = Uploads(client, services.identity.create_key(eve, "eve's key").secret)
    theirs = other.started("copy.bin", 1, len(data), sha256=sha(data))
    unknown = other.started("none.bin", 1, len(data), sha256="0" * 64)
    assert set(theirs) == set(unknown)
    assert (theirs["state"], theirs["deduplicated"]) == (unknown["state"], unknown["deduplicated"]) == ("open", False)


# --- over a real server -------------------------------------------------------------------------------------------
KEY = "mh_resume_test_key_0123456789"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("resume"), KEY) as url:
        yield url


def test_resume_and_dedup_over_a_real_server(server):
    data = os.urandom(3 * MiB + 7)
    fp = fingerprint(data)
    with httpx.Client(base_url=server + "/api/v1", headers=bearer(KEY), timeout=30) as http:
        started = http.post(
            "/uploads",
            json={"name": "big.bin", "total_chunks": 4, "size": len(data), "fingerprint": fp, "sha256": sha(data)},
        ).json()
        assert started["state"] == "open" and started["chunk_size"] is None
        assert http.put(f"/uploads/{started['id']}/chunks/0", content=data[:MiB]).status_code == 200
        found = http.get("/uploads", params={"name": "big.bin", "size": len(data), "fingerprint": fp}).json()
        assert found[0]["chunk_size"] == MiB  # recorded from the first full chunk
        for n, piece in enumerate(cut(data, found[0]["chunk_size"])):
            if n in found[0]["missing_chunks"]:
                assert http.put(f"/uploads/{started['id']}/chunks/{n}", content=piece).status_code == 200
        done = http.post(f"/uploads/{started['id']}/complete").json()
        assert done["file"]["sha256"] == sha(data)
        again = http.post(
            "/uploads", json={"name": "again.bin", "total_chunks": 1, "size": len(data), "sha256": sha(data)}
        )
        assert again.status_code == 201 and again.json()["deduplicated"] is True
        assert http.get(f"/files/{again.json()['file_id']}").json()["sha256"] == sha(data)


def test_member_role_is_enough(up, client, services, admin):
    services.identity.create_user(admin, "mo", role=Role.MEMBER)
    mo = Uploads(client, services.identity.create_key(admin, "mo", username="mo").secret)
    assert mo.started("a.bin", 1, 3, sha256=sha(b"abc"))["state"] == "open"
