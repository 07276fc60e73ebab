"""The order of the schemathesis run's operations (test_schemathesis.py)."""

from __future__ import annotations

import re

ORDER = {"GET": 0, "HEAD": 0, "POST": 1, "PUT": 2, "PATCH": 3, "DELETE": 4}


def pytest_collection_modifyitems(items):
    """The schemathesis run renames and deletes the objects it was seeded with (a deployment's PATCH may rename
    it, a DELETE removes it with what is under it). So its operations read first, then create, replace, change
    and delete, each kind from the deepest path up: most operations meet the seeded objects."""
    positions = [i for i, item in enumerate(items) if item.nodeid.startswith(__package__.replace(".", "/"))]
    run = [i for i in positions if _operation(items[i].name) is not None]
    if not run:
        return

    def rank(item):
        method, path = _operation(item.name)
        return ORDER.get(method, 5), -path.count("/")

    ordered = sorted((items[i] for i in run), key=rank)  # stable: the document's order within a rank
    for i, item in zip(run, ordered, strict=True):
        items[i] = item


def _operation(name: str) -> tuple[str, str] | None:
    m = re.fullmatch(r"test_the_native_api_answers_as_its_openapi_document_says\[([A-Z]+) (/[^\]]*)\]", name)
    return (m.group(1), m.group(2)) if m else None
