"""A client that disconnects half-way through an upload's body: one warning line in the server's log, no ERROR, no
traceback, nothing kept, and the server serves on. A real server, raw sockets."""

from __future__ import annotations

import re
import socket
import time
from urllib.parse import urlsplit

import httpx

from tests.servers import running_server

KEY = "mh_disconnect_test_key_0123456789"
AUTH = {"authorization": f"Bearer {KEY}"}
CATALOGUE = {"name": "resnet18", "url": "https://example.com/r18", "framework": 1, "domain": "ic", "licence": "MIT"}


KORE_FORM = (
    b'--b\r\nContent-Disposition: form-data; name="fileContext"\r\n\r\nbulkImport\r\n'
    b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
)
KORE_CHUNK_FORM = (
    b'--b\r\nContent-Disposition: form-data; name="chunkNumber"\r\n\r\n0\r\n'
    b'--b\r\nContent-Disposition: form-data; name="file"; filename="blob"\r\n\r\n'
)
UBIOPS_FORM = b'--b\r\nContent-Disposition: form-data; name="file"; filename="p.zip"\r\n\r\nPK\x03\x04'
MULTIPART = "Content-Type: multipart/form-data; boundary=b\r\n"


def _cut_off(
    url: str,
    method: str,
    target: str,
    headers: str = "",
    total: int = 4_000_000,
    sent: int = 1_000_000,
    form: bytes = b"",
    chunked: bool = False,
):
    """Send the head and ``sent`` of ``total`` body bytes (starting with a multipart ``form``'s first parts, if
    any), then close the connection. ``chunked``: the body in chunked transfer coding (no length), cut mid-chunk."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        length = "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {total}\r\n"
        head = f"{method} {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer {KEY}\r\n{headers}{length}\r\n"
        body = (form + b"x" * sent)[:sent]
        if chunked:
            body = b"%x\r\n" % total + body  # one chunk that announces more than arrives
        sock.sendall(head.encode() + body)
        time.sleep(0.3)  # the server is reading the body when the client goes


def test_a_client_gone_mid_body_is_one_warning_line(tmp_path):
    with running_server(tmp_path, KEY) as url, httpx.Client(base_url=url, headers=AUTH) as c:
        session = c.post("/api/v1/uploads", json={"name": "c.bin", "total_chunks": 2}).json()["id"]
        pk = c.post("/v1/pretrained-models/create", json=CATALOGUE).json()["pk"]
        exp = c.post("/api/2.0/mlflow/experiments/create", json={"name": "e"}).json()["experiment_id"]
        kore = c.post(
            "/api/public/files/session/start",
            json={
                "fileContext": "bulkImport",
                "fileExtension": "wav",
                "fileName": "s.wav",
                "totalChunks": 2,
                "fileSize": 8_000_000,
            },
            headers={"x-api-key": KEY},
        )
        assert kore.status_code == 200, kore.text
        _ubiops_version(c)
        version = "/v2.1/projects/cut/deployments/d/versions/v1"
        cuts = [
            ("POST", "/api/v1/files?name=a.bin", "", {}),  # native, the raw body
            ("PUT", f"/api/v1/uploads/{session}/chunks/0", "", {}),  # native, a chunk
            ("PUT", f"/api/v1/uploads/{session}/chunks/1", "", {"chunked": True}),  # a chunk without a length
            ("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{exp}/x/a.bin", "", {}),  # MLflow: reads request.stream()
            ("POST", f"/v1/pretrained-models/{pk}/data", "Content-Disposition: attachment; filename=data\r\n", {}),
            ("POST", "/api/public/files", f"x-api-key: {KEY}\r\n{MULTIPART}", {"form": KORE_FORM}),  # Kore.ai
            (  # Kore.ai: a chunk of a session, cut in its file part
                "POST",
                f"/api/public/files/session/{kore.json()['sessionId']}",
                f"x-api-key: {KEY}\r\n{MULTIPART}",
                {"form": KORE_CHUNK_FORM},
            ),
            (  # UbiOps: a deployment package, cut while it streams
                "POST",
                f"{version}/revisions",
                MULTIPART,
                {"form": UBIOPS_FORM},
            ),
        ]
        for method, target, headers, how in cuts:
            _cut_off(url, method, target, headers, **how)
        big = c.post("/api/v1/files", params={"name": "big.bin"}, content=b"z" * (16 << 20)).json()
        parts = urlsplit(url)
        with socket.create_connection((parts.hostname, parts.port)) as sock:  # a download cut off: not a body
            sock.sendall(
                f"GET /api/v1/files/{big['id']}/content HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n\r\n".encode()
            )
            assert sock.recv(1024).startswith(b"HTTP/1.1 200")
        time.sleep(0.5)
        assert c.get("/api/v1/files").json()["total"] == 1  # nothing of the cut uploads was kept
        again = c.post("/api/v1/files", params={"name": "b.bin"}, content=b"whole")  # the server serves on
        assert again.status_code == 201, again.text
    log = (tmp_path / "server.log").read_text()
    assert "Traceback" not in log and "ERROR" not in log, log
    warnings = [line for line in log.splitlines() if "disconnected before the request body was complete" in line]
    assert len(warnings) == len(cuts), log
    for line, (method, target, _, how) in zip(warnings, cuts, strict=True):
        assert line.startswith("WARNING:") and f"{method} {target.split('?')[0]} after " in line, line
        if how.get("chunked"):
            assert re.search(r"after \d+ bytes; the request was dropped$", line), line
        else:
            assert re.search(r"after \d+ of 4000000 bytes; the request was dropped$", line), line


def _ubiops_version(c: httpx.Client) -> None:
    """A UbiOps project ``cut`` with a deployment ``d`` and its version ``v1``, to upload packages to."""
    token = {"authorization": f"Token {KEY}"}
    assert c.post("/v2.1/projects", json={"name": "cut", "organization_name": "default"}, headers=token).is_success
    deployment = {"name": "d", "input_type": "plain", "output_type": "plain"}
    assert c.post("/v2.1/projects/cut/deployments", json=deployment, headers=token).is_success
    assert c.post("/v2.1/projects/cut/deployments/d/versions", json={"version": "v1"}, headers=token).is_success
