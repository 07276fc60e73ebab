def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


def test_native_roundtrip(client):
    h = {"Authorization": "Bearer mh_test_admin_key_0123456789"}
    r = client.post("/api/v1/files", params={"name": "a.bin"}, content=b"hello world", headers=h)
    assert r.status_code == 201, r.text
    fid = r.json()["id"]
    r = client.get(f"/api/v1/files/{fid}/content", headers=h)
    assert r.content == b"hello world"
