"""What a running server tells about itself, asked as a user would: ``GET /metrics`` scraped after known traffic
(predictions answered by the HTTP fast path included) and parsed with prometheus_client's own parser; the API
reference pages working offline (every asset they name served by the server, no other host); ``GET /``; the log as
one JSON object per line. One real ``modelharbor serve`` process for the module."""

from __future__ import annotations

import io
import json
import re
import socket
import time
import zipfile
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.servers import running_server

KEY = "mh_observability_test_key_0123456789"
TOKEN = "scrape-token-7f3e"
NATIVE = {"authorization": f"Bearer {KEY}"}
UBIOPS = {"authorization": f"Token {KEY}"}
ADDER = (  # answers n + 1; 13 raises, so one prediction fails
    "class Deployment:\n"
    "    def __init__(self, base_directory, context):\n"
    "        self.unlucky = 13\n"
    "    def request(self, data):\n"
    "        if data['n'] == self.unlucky:\n"
    "            raise ValueError('unlucky')\n"
    "        return {'m': data['n'] + 1}\n"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("observed")
    settings = {
        "MODELHARBOR_LOG_FORMAT": "json",
        "MODELHARBOR_LOG_LEVEL": "info",
        "MODELHARBOR_METRICS_TOKEN": TOKEN,
    }
    with running_server(root, KEY, **settings) as url:
        yield url, root


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``GET /metrics``, parsed by prometheus_client: (name, sorted labels) -> value."""
    answer = httpx.get(url + "/metrics", headers={"authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def deploy(url: str) -> None:
    """A structured deployment ``adder`` in project ``obs``, built and ready (UbiOps API)."""
    with httpx.Client(base_url=url + "/v2.1", headers=UBIOPS, timeout=60) as api:
        api.post("/projects", json={"name": "obs", "organization_name": "default"}).raise_for_status()
        api.post(
            "/projects/obs/deployments",
            json={
                "name": "adder",
                "input_type": "structured",
                "output_type": "structured",
                "input_fields": [{"name": "n", "data_type": "int"}],
                "output_fields": [{"name": "m", "data_type": "int"}],
            },
        ).raise_for_status()
        api.post(
            "/projects/obs/deployments/adder/versions",
            json={"version": "v1", "request_retention_mode": "none", "maximum_idle_time": 600},
        ).raise_for_status()
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zf:
            zf.writestr("deployment_package/deployment.py", ADDER)
        upload = api.post(
            "/projects/obs/deployments/adder/versions/v1/revisions",
            files={"file": ("adder.zip", buffer.getvalue(), "application/zip")},
        )
        upload.raise_for_status()
        revision = upload.json()["revision"]
        deadline = time.monotonic() + 180
        while (status := api.get(f"/projects/obs/deployments/adder/versions/v1/revisions/{revision}").json())[
            "status"
        ] not in ("success", "failed"):
            assert time.monotonic() < deadline, "the package did not build in 180 s"
            time.sleep(0.3)
        assert status["status"] == "success", status


def test_metrics_count_the_traffic_caused(server):
    url, _ = server
    before = scrape(url)
    deploy(url)
    predict = "/v2.1/projects/{project}/deployments/{deployment}/requests"
    with httpx.Client(base_url=url, timeout=60) as c:
        created = c.post("/api/v1/projects", json={"name": "counted"}, headers=NATIVE)
        assert created.status_code == 201, created.text
        for missing in ("a" * 24, "b" * 24):  # two raw paths, one route template
            assert c.get(f"/api/v1/projects/{missing}", headers=NATIVE).status_code == 404
        assert c.get("/api/v1/no/such/route", headers=NATIVE).status_code == 404
        chunk = b"x" * 123_457
        session = c.post("/api/v1/uploads", json={"name": "c.bin", "total_chunks": 1}, headers=NATIVE).json()
        assert c.put(f"/api/v1/uploads/{session['id']}/chunks/0", content=chunk, headers=NATIVE).status_code == 200
        done = c.post(f"/api/v1/uploads/{session['id']}/complete", headers=NATIVE).json()
        download = c.get(f"/api/v1/files/{done['file']['id']}/content", headers=NATIVE)
        assert download.content == chunk
        # whole, plain requests: the HTTP protocol answers them itself (api/http.py), without the application
        for n in (1, 2, 3):
            answer = c.post(predict.format(project="obs", deployment="adder"), json={"n": n}, headers=UBIOPS)
            assert answer.status_code == 200 and answer.json()["result"] == {"m": n + 1}, answer.text
        failed = c.post(predict.format(project="obs", deployment="adder"), json={"n": 13}, headers=UBIOPS)
        assert failed.json()["status"] == "failed"
        refused = c.post(predict.format(project="obs", deployment="nope"), json={"n": 1}, headers=UBIOPS)
        assert refused.status_code == 404

    after = scrape(url)

    def caused(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "modelharbor_http_requests_total"
    assert caused(requests, dialect="native", route="/api/v1/projects", method="POST", status="201") == 1
    assert caused(requests, dialect="native", route="/api/v1/projects/{project_id}", method="GET", status="404") == 2
    assert caused(requests, dialect="native", route="unmatched", method="GET", status="404") == 1
    chunk_route = {"dialect": "native", "route": "/api/v1/uploads/{upload_id}/chunks/{number}", "method": "PUT"}
    assert caused(requests, **chunk_route, status="200") == 1
    assert caused("modelharbor_http_received_bytes_total", **chunk_route) == len(chunk)
    content = {"dialect": "native", "route": "/api/v1/files/{file_id}/content", "method": "GET"}
    assert caused("modelharbor_http_sent_bytes_total", **content) == len(chunk)
    hot = {"dialect": "ubiops", "route": "/v2.1/projects/{project}/deployments/{deployment}/requests", "method": "POST"}
    assert caused(requests, **hot, status="200") == 4  # three completed, one failed (still a 200 answer)
    assert caused(requests, **hot, status="404") == 1
    assert caused("modelharbor_http_request_duration_seconds_count", **hot) == 5
    assert caused("modelharbor_http_request_duration_seconds_bucket", **hot, le="+Inf") == 5
    assert value(after, "modelharbor_http_request_duration_seconds_sum", **hot) > 0
    assert caused("modelharbor_predictions_total", outcome="completed") == 3
    assert caused("modelharbor_predictions_total", outcome="failed") == 1
    assert caused("modelharbor_prediction_duration_seconds_count", outcome="completed") == 3
    assert (
        value(after, "modelharbor_instances", state="ready") + value(after, "modelharbor_instances", state="busy") >= 1
    )
    assert value(after, "modelharbor_deployed_versions", state="running") == 1
    assert value(after, "modelharbor_queued_predictions") == 0
    assert value(after, "modelharbor_info", version=httpx.get(url + "/healthz").json()["version"]) == 1
    assert any(name == "process_cpu_seconds_total" for name, _ in after)
    # no series names a raw path: the labels are templates
    assert not any("a" * 24 in str(labels) or "obs" in str(labels) for _, labels in after)


def test_metrics_need_the_token_when_one_is_set(server):
    url, _ = server
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": TOKEN}):
        answer = httpx.get(url + "/metrics", headers=headers)
        assert answer.status_code == 401 and "MODELHARBOR_METRICS_TOKEN" in answer.text
        assert answer.headers["www-authenticate"] == "Bearer"
    openmetrics = httpx.get(
        url + "/metrics", headers={"authorization": f"Bearer {TOKEN}", "accept": "application/openmetrics-text"}
    )
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.rstrip().endswith("# EOF")


class _Links(HTMLParser):
    """Every ``src``/``href`` (and ReDoc's ``spec-url``) of a page, and its inline scripts."""

    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.links += [value for name, value in attrs if name in ("src", "href", "spec-url", "action") and value]
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.scripts.append(data)


@pytest.mark.parametrize(
    "page", ["/api/v1/docs", "/api/v1/docs?spec=ubiops", "/api/v1/redoc", "/api/v1/redoc?spec=kore"]
)
def test_the_docs_pages_need_no_other_host(server, page):
    url, _ = server
    with httpx.Client(base_url=url) as c:
        answer = c.get(page)
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
        parser = _Links()
        parser.feed(answer.text)
        assert parser.links, answer.text
        here = urlsplit(url)
        assert "cdn" not in answer.text.lower() and "googleapis" not in answer.text
        for link in parser.links:
            target = urlsplit(urljoin(url + page, link))
            assert (target.scheme, target.netloc) == (here.scheme, here.netloc), f"{page} names another host: {link}"
            fetched = c.get(target.path + (f"?{target.query}" if target.query else ""))
            assert fetched.status_code == 200, (link, fetched.status_code)
            if link.endswith(".js"):
                assert "javascript" in fetched.headers["content-type"] and len(fetched.content) > 100_000
        specs = [json.loads(m) for s in parser.scripts for m in re.findall(r"const specs = (\{.*?\});", s)]
        if page.startswith("/api/v1/docs"):  # Swagger UI's drop-down: every document the server publishes
            [urls] = specs
            assert set(urls) == {"native", "kore", "mlflow", "domino", "ubiops", "ufdl"}
            for spec in urls.values():
                assert not urlsplit(spec).netloc
                assert c.get(spec).json()["openapi"].startswith("3.")
        chosen = re.search(r'<option value="(\w+)" selected>', answer.text).group(1)
        assert chosen == (page.split("spec=")[1] if "spec=" in page else "native")


def test_the_root_leads_to_the_docs(server):
    url, _ = server
    answer = httpx.get(url + "/", follow_redirects=False)
    assert answer.status_code == 307 and answer.headers["location"] == "/api/v1/docs"
    assert httpx.get(url + "/", follow_redirects=True).text.count("swagger-ui-bundle.js") == 1


def test_the_log_is_one_json_object_per_line(server):
    url, root = server
    parts = urlsplit(url)
    session = httpx.post(url + "/api/v1/uploads", json={"name": "cut.bin", "total_chunks": 1}, headers=NATIVE).json()
    with socket.create_connection((parts.hostname, parts.port)) as sock:  # a chunk cut off half-way
        sock.sendall(
            f"PUT /api/v1/uploads/{session['id']}/chunks/0 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
            f"Content-Length: 2000000\r\n\r\n".encode()
            + b"y" * 500_000
        )
        time.sleep(0.3)
    fast = "/v2.1/projects/none/deployments/none/requests"  # a whole, plain request: the protocol answers it
    assert httpx.post(url + fast, json={"n": 1}, headers=UBIOPS).status_code == 404
    time.sleep(0.5)
    lines = (root / "server.log").read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line, the start-up lines included
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record), record
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["time"]), record
    assert any(r["message"].startswith("ModelHarbor ") for r in records)  # the announce line
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    assert any(r["method"] == "POST" and r["path"] == "/api/v1/uploads" and r["status"] == 201 for r in access)
    assert any(r["path"] == fast and r["status"] == 404 for r in access)  # the protocol writes its access line too
    gone = [r for r in records if "disconnected before the request body was complete" in r["message"]]
    assert len(gone) == 1 and gone[0]["level"] == "WARNING" and "exception" not in gone[0], gone
    assert f"PUT /api/v1/uploads/{session['id']}/chunks/0 after " in gone[0]["message"]
    assert gone[0]["message"].endswith("of 2000000 bytes; the request was dropped"), gone
    assert not any(r["level"] == "ERROR" or "exception" in r for r in records), [r for r in records if "exception" in r]
