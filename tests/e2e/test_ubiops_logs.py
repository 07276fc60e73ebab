"""The real ``ubiops`` client's ``logs_list`` against a running ModelHarbor: what a deployment prints, filtered with
LogQL label selectors and line filters, a time window and a limit; bad queries are 400s in the dialect's shape."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.core.test_serving_logs import CHATTY
from tests.e2e.test_ubiops_client import package, wait_built
from tests.servers import running_server

ubiops = pytest.importorskip("ubiops")

KEY = "mh_e2e_ubiops_logs_key_0123456789"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    root = tmp_path_factory.mktemp("ubiops-logs")
    with running_server(root, KEY) as url:
        config = ubiops.Configuration(host=f"{url}/v2", api_key={"Authorization": KEY})
        client = ubiops.ApiClient(config)
        yield ubiops.CoreApi(client)
        client.close()


def test_logs_list(api, tmp_path):
    api.projects_create(ubiops.ProjectCreate(name="logs", organization_name="default"))
    api.deployments_create(
        "logs",
        ubiops.DeploymentCreate(
            name="chatty",
            input_type="structured",
            output_type="structured",
            input_fields=[ubiops.DeploymentInputFieldCreate(name="n", data_type="int")],
            output_fields=[ubiops.DeploymentOutputFieldCreate(name="m", data_type="int")],
        ),
    )
    api.deployment_versions_create("logs", "chatty", ubiops.DeploymentVersionCreate(version="v1"))
    api.revisions_file_upload("logs", "chatty", "v1", file=package(tmp_path / "p.zip", {"deployment.py": CHATTY}))
    assert wait_built(api, "logs", "chatty", "v1").status == "available"
    before = datetime.now(UTC)
    for n in (1, -2, 3):
        assert api.deployment_requests_create("logs", "chatty", {"n": n}).status == "completed"

    def logs(**kw):
        deadline = time.monotonic() + 10  # lines are read from the workers' pipes in the background
        while True:
            got = api.logs_list("logs", **kw)
            if any("asked for 3" in x.log for x in got) or kw.get("limit") or time.monotonic() > deadline:
                return got

    everything = logs()
    texts = [x.log for x in everything]
    assert [t for t in texts if t.startswith(("model", "asked"))] == [
        "model loaded",
        "asked for 1",
        "asked for -2",
        "asked for 3",
    ]
    first = everything[texts.index("asked for 1")]
    assert first.metadata.deployment_name == "chatty" and first.metadata.deployment_version == "v1"
    assert first.metadata.level == "info" and first.metadata.system is False and first.metadata.instance_id
    assert isinstance(first.timestamp, int) and first.timestamp > 10**18 and first.timestamp_str.endswith("Z")
    assert [x.timestamp for x in everything] == sorted(x.timestamp for x in everything)
    assert any(x.metadata.system for x in everything)  # the executor's own lines (started, ready)

    errors = api.logs_list("logs", query='{deployment_name="chatty", level="error"}')
    assert [(x.log, x.metadata.level) for x in errors] == [("negative input -2", "error")]
    asked = api.logs_list("logs", query='{deployment_version="v1"} |= "asked" != "-2"')
    assert [x.log for x in asked] == ["asked for 1", "asked for 3"]
    assert [x.log for x in api.logs_list("logs", query='|~ "asked for [0-9]"', limit=1)] == ["asked for 3"]
    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    assert api.logs_list("logs", start=later) == []
    assert [x.log for x in api.logs_list("logs", start=before.isoformat(), query='|= "asked"')] == [
        "asked for 1",
        "asked for -2",
        "asked for 3",
    ]
    assert api.logs_list("logs", end=(before - timedelta(hours=1)).isoformat()) == []

    for kw, says in [
        ({"query": '{colour="red"}'}, "unknown label"),
        ({"query": '{level="error"} | json'}, "only label selectors"),
        ({"start": "yesterday"}, "ISO 8601"),
        ({"limit": 5001}, "between 1 and 5000"),
    ]:
        with pytest.raises(ubiops.exceptions.ApiException) as exc:
            api.logs_list("logs", **kw)
        assert exc.value.status == 400 and says in exc.value.body, (kw, exc.value.body)
    with pytest.raises(ubiops.exceptions.ApiException) as exc:
        api.logs_list("logs", query='{deployment_name="other"}')
    assert exc.value.status == 404
    with pytest.raises(ubiops.exceptions.ApiException) as exc:
        api.logs_list("nope")
    assert exc.value.status == 404
