"""Every dialect's OpenAPI document is served at ``/openapi/<name>.json`` and fuzzed with schemathesis.

For each dialect of ``api.dialects.DIALECTS`` the document the app serves must equal the one ``api/dialect.py``
builds without services; then every operation in it is called with generated requests (examples, the coverage
phase — boundary values, missing and malformed parameters, methods the path does not take — and ``MAX_EXAMPLES``
random ones) with an admin key, against the whole app in-process. A case fails on any 5xx, on a status the
document does not declare for the operation, on a body, content type or header that does not match it, and on a
405 without ``Allow``. The cases are the same every run (a fixed seed, deterministic generation);
``MODELHARBOR_SCHEMATHESIS_EXAMPLES`` sets the random examples per operation for a longer run.
"""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import allow_header_conformance, unsupported_method

from modelharbor.api.dialect import document, openapi_path
from modelharbor.api.dialects import DIALECTS
from modelharbor.app import create_app
from modelharbor.services import build_services
from tests.conftest import ADMIN_KEY, make_settings

pytestmark = pytest.mark.slow  # a long module: it starts first under make test's workers (tests/conftest.py)

MAX_EXAMPLES = int(os.environ.get("MODELHARBOR_SCHEMATHESIS_EXAMPLES", "5"))
# Dialects whose routes accept some requests their document calls invalid, so schemathesis' negative-data check
# (a request outside the document must get a 4xx) is off for them: MLflow's routes read protobuf JSON field by field
# without checking every type (``max_results: false``, a tag without a key); the typed-core work of issue 14 is
# retyping that parsing.
LENIENT = {"mlflow"}
# Operations whose 5xx is known and left to the MLflow tracking edge's retyping (core/tracking and the MLflow routes
# belong to that work): a 5xx there is counted and printed, not failed; anywhere else it fails. Remove an entry once
# its cause is fixed.
KNOWN_5XX: dict[str, dict[str, str]] = {}  # dialect -> {operation: why}: 5xx a test tolerates (none today)
KNOWN: Counter[tuple[str, str]] = Counter()  # (dialect, operation) of every known 5xx answered
ANSWERS: Counter[tuple[str, str, int]] = Counter()  # (dialect, operation, status) of every answer


def credentials(schemes: dict[str, Any]) -> dict[str, Any]:
    """Schemathesis' auth for each security scheme: the admin key as the scheme takes it."""
    auth: dict[str, Any] = {}
    for name, scheme in schemes.items():
        if scheme["type"] == "http" and scheme.get("scheme") == "bearer":
            auth[name] = {"bearer": ADMIN_KEY}
        elif scheme["type"] == "apiKey" and scheme.get("name", "").lower() == "authorization":
            auth[name] = {"api_key": f"{scheme.get('x-prefix', 'Bearer')} {ADMIN_KEY}"}
        elif scheme["type"] == "apiKey":
            auth[name] = {"api_key": ADMIN_KEY}
    return auth


def config(dialect) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "seed": 14,
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True},
            "auth": {"openapi": credentials(dialect.security)},
            "checks": {
                # 501 is what a route answers for a vendor feature ModelHarbor does not have (documented as such)
                "not_a_server_error": {"enabled": True, "expected-statuses": ["2xx", "3xx", "4xx", "501"]},
                "status_code_conformance": {"enabled": True},
                "content_type_conformance": {"enabled": True},
                "response_schema_conformance": {"enabled": True},
                "response_headers_conformance": {"enabled": True},
                "unsupported_method": {"enabled": True},
                # Off: the server checks what JSON Schema cannot say (names taken, objects that exist…)
                "positive_data_acceptance": {"enabled": False},
                "negative_data_rejection": {"enabled": dialect.name not in LENIENT},
            },
        }
    )


class AppUnderTest:
    """The ASGI app schemathesis calls: the app the module's fixture makes (the schemas exist before it)."""

    app: Any = None

    async def __call__(self, scope, receive, send) -> None:
        await self.app(scope, receive, send)


APP = AppUnderTest()


@pytest.fixture(scope="module")
def harbor(tmp_path_factory, sqlite_template) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("dialect-schemathesis")
    shutil.copy(sqlite_template, root / "modelharbor.db")
    settings = make_settings(root, f"sqlite:///{root / 'modelharbor.db'}")
    services = build_services(settings)
    services.identity.ensure_admin("admin", key=ADMIN_KEY)
    try:
        APP.app = create_app(settings, services, run_workers=False)
        yield TestClient(APP.app)
        shutdown_lifespans()
    finally:
        APP.app = None
        services.close()


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_each_dialect_serves_its_document(dialect, harbor):
    served = harbor.get(openapi_path(dialect))
    assert served.status_code == 200
    assert served.json() == document(dialect)
    assert served.json()["paths"], f"{dialect.name}'s document has no operations"


def shadowed(doc: dict[str, Any]) -> set[str]:
    """Paths another path's template also matches (Domino's ``/v1/ui`` and ``/v1/{model_name}``; ``…/reviews/stages``
    and ``…/reviews/{review_id}``; a project file's ``PUT …/{owner}/{project}/{path}`` and every other project-file
    route): a method of the other is really routed there too, so ``Allow`` rightly names it
    although this path's operations do not list it. Schemathesis' method checks cannot know that and skip these."""

    def pattern(path: str) -> re.Pattern[str]:
        # a ``{path}`` parameter is Starlette's ``{path:path}`` (Domino's project files): it spans slashes
        spans = re.sub(r"\\\{path\\\}", ".+", re.escape(path))
        return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", spans) + "$")

    def sample(path: str) -> str:
        return re.sub(r"\{[^}]+\}", "x0", path)

    patterns = {path: pattern(path) for path in doc["paths"]}
    return {p for p in doc["paths"] if any(q != p and patterns[q].match(sample(p)) for q in doc["paths"])}


def _fuzz(dialect):
    doc = document(dialect)
    schema = schemathesis.openapi.from_dict(doc, config=config(dialect))
    schema.app = APP
    overlapping = shadowed(doc)

    known = KNOWN_5XX.get(dialect.name, {})

    @schema.parametrize()
    def test(case, harbor):
        excluded = [unsupported_method, allow_header_conformance] if case.path in overlapping else []
        if case.operation.label in known:
            excluded.append(not_a_server_error)
        response = case.call_and_validate(excluded_checks=excluded)
        ANSWERS[dialect.name, case.operation.label, response.status_code] += 1
        if response.status_code >= 500 and response.status_code != 501:
            KNOWN[dialect.name, case.operation.label] += 1

    test.__name__ = f"test_{dialect.name}_answers_as_its_openapi_document_says"
    return test


for _dialect in DIALECTS:
    _test = _fuzz(_dialect)
    globals()[_test.__name__] = _test
del _dialect, _test


def test_the_runs_called_every_dialect():
    """The fuzzing above is worth something only if it reached every dialect and got past authentication."""
    if not ANSWERS:
        pytest.skip("runs after the dialects' schemathesis tests, in the same session")
    seen: dict[str, Counter[int]] = {}
    for dialect in DIALECTS:
        statuses: Counter[int] = Counter()
        for (name, _, status), n in ANSWERS.items():
            if name == dialect.name:
                statuses[status] += n
        operations = {op for name, op, _ in ANSWERS if name == dialect.name}
        print(
            f"\n{dialect.name}: {statuses.total()} requests, {len(operations)} operations, by status {dict(statuses)}"
        )
        seen[dialect.name] = statuses
    for (name, operation), n in KNOWN.items():
        print(f"{name}: {n} known 5xx from {operation} ({KNOWN_5XX[name][operation]})")
    for name, statuses in seen.items():
        assert statuses.total() > 0, name
        assert statuses[401] < statuses.total() / 2, (name, statuses)
