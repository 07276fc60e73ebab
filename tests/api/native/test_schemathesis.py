"""Schemathesis against the native API's own OpenAPI document (``/api/v1/openapi.json``).

Every operation of the document is called with generated requests — its examples, the coverage phase (boundary
values, missing and malformed parameters, methods the path does not take) and ``MAX_EXAMPLES`` random ones — with
an admin key, against the whole app in-process over a database seeded with one object of each kind. The seeded
objects are the path parameters' examples, so paths hit real rows sometimes (random values hit none). A case fails
on any 5xx, on a status the document does not declare for the operation, on a body, content type or header that
does not match what it declares, and on a 405 without ``Allow``.

``MODELHARBOR_SCHEMATHESIS_EXAMPLES`` sets the random examples per operation (default ``MAX_EXAMPLES``) for a longer
run. The cases are the same every run (a fixed seed, deterministic generation).
"""

from __future__ import annotations

import copy
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from schemathesis.config import SchemathesisConfig
from schemathesis.python.asgi import shutdown_lifespans

from modelharbor.api.native import create_native_app
from modelharbor.app import create_app
from modelharbor.services import build_services
from tests.api.native.seeding import API, BODIES, example, seed, seeded
from tests.conftest import ADMIN_KEY, make_settings

pytestmark = pytest.mark.slow  # a long module: it starts first under make test's workers (tests/conftest.py)

MAX_EXAMPLES = int(os.environ.get("MODELHARBOR_SCHEMATHESIS_EXAMPLES", "10"))
ANSWERS: Counter[tuple[str, int]] = Counter()  # (operation, status) of every answer the run received


def document() -> dict[str, Any]:
    """The native API's document as ``/api/v1/openapi.json`` serves it (the fixture checks that it is), with the
    seeded objects as examples of the path parameters and ``BODIES`` as examples of the bodies."""
    doc = copy.deepcopy(create_native_app(services=None).openapi())  # describing the API needs no services
    doc["servers"] = [{"url": API}]
    for path, item in doc["paths"].items():
        for method, spec in item.items():
            for param in spec.get("parameters", ()):
                value = example(path, param["name"], param["schema"]) if param["in"] == "path" else None
                if value is not None:
                    param["example"] = value
            body = BODIES.get((method.upper(), path))
            if body is not None:
                spec["requestBody"]["content"]["application/json"]["example"] = body
    return doc


schemathesis.serializer.alias("application/zip", "application/octet-stream")  # a package's bytes, sent as they are
schema = schemathesis.openapi.from_dict(
    document(),
    config=SchemathesisConfig.from_dict(
        {
            "seed": 12,
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True},
            "auth": {"openapi": {"ApiKey": {"bearer": ADMIN_KEY}}},
            "checks": {
                "not_a_server_error": {"enabled": True},
                "status_code_conformance": {"enabled": True},
                "content_type_conformance": {"enabled": True},
                "response_schema_conformance": {"enabled": True},
                "response_headers_conformance": {"enabled": True},
                "unsupported_method": {"enabled": True},
                # Off: the server checks what JSON Schema cannot say (a file id names an uploaded file, a name is
                # not taken, chunks fit the size…), so schema-valid requests are often rightly refused with 400.
                "positive_data_acceptance": {"enabled": False},
            },
        }
    ),
)


class AppUnderTest:
    """The ASGI app schemathesis calls: the app the module's fixture makes (the schema exists before it)."""

    app: Any = None

    async def __call__(self, scope, receive, send) -> None:
        await self.app(scope, receive, send)


APP = AppUnderTest()
schema.app = APP
IDS: dict[str, str] = {}  # the seeded objects' generated ids, by path parameter name


@pytest.fixture(scope="module")
def harbor(tmp_path_factory, sqlite_template) -> Iterator[None]:
    root = tmp_path_factory.mktemp("schemathesis")
    shutil.copy(sqlite_template, root / "modelharbor.db")
    settings = make_settings(root, f"sqlite:///{root / 'modelharbor.db'}")
    services = build_services(settings)
    services.identity.ensure_admin("admin", key=ADMIN_KEY)
    try:
        APP.app = create_app(settings, services, run_workers=False)
        client = TestClient(APP.app)
        served = client.get(f"{API}/openapi.json").json()
        assert served == {**create_native_app(services=None).openapi(), "servers": [{"url": API}]}
        IDS.update(seed(client, services))
        yield
        shutdown_lifespans()  # schemathesis started the app's lifespan: end it while the services live
    finally:
        APP.app = None
        IDS.clear()
        services.close()


@schema.parametrize()
def test_the_native_api_answers_as_its_openapi_document_says(case, harbor):
    for container in (case.path_parameters, case.body):  # in place: schemathesis watches these objects
        if isinstance(container, dict):
            container.update(seeded(container, IDS))
    response = case.call_and_validate()
    ANSWERS[case.operation.label, response.status_code] += 1


def test_the_run_reached_the_objects():
    """The run above is worth something only if its requests got past authentication and reached real objects."""
    if not ANSWERS:
        pytest.skip("runs after test_the_native_api_answers_as_its_openapi_document_says, in the same session")
    statuses: Counter[int] = Counter()
    for (_, status), n in ANSWERS.items():
        statuses[status] += n
    operations = {op for op, _ in ANSWERS}
    succeeded = {op for op, status in ANSWERS if status < 300}
    print(f"\nschemathesis: {statuses.total()} requests, {len(operations)} operations, by status {dict(statuses)}")
    print("never succeeded:", sorted(operations - succeeded))
    assert statuses[401] < statuses.total() / 4, statuses
    assert len(succeeded) > len(operations) * 3 / 4, sorted(operations - succeeded)
