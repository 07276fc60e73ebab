"""The install split: `pip install modelharbor` (and `make run`) brings the runtime dependencies only, and everything
the server imports is among them; the base serving environment is declared once and documented as it is."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from modelharbor.compute.environments import SERVING_BASE

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "modelharbor"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
RUNTIME = [Requirement(r) for r in PROJECT["dependencies"]]
EXTRAS = {name: [Requirement(r) for r in reqs] for name, reqs in PROJECT["optional-dependencies"].items()}

# Tools for tests, linting and the vendors' clients the end-to-end tests drive, and the heavy libraries they bring:
# never what the server needs to run.
DEV_TOOLS = {
    "pytest",
    "ruff",
    "moto",
    "schemathesis",
    "hypothesis",
    "import-linter",
    "mlflow",
    "mlflow-skinny",
    "ubiops",
    "psutil",
    "pandas",
    "pyarrow",
    "matplotlib",
    "scipy",
    "flask",
    "numpy",
    "scikit-learn",
}


def _names(requirements: list[Requirement]) -> set[str]:
    return {canonicalize_name(r.name) for r in requirements}


def test_the_runtime_dependencies_hold_no_test_or_dev_tool():
    runtime = _names(RUNTIME)
    assert not runtime & DEV_TOOLS, f"runtime dependencies that are development tools: {sorted(runtime & DEV_TOOLS)}"
    assert not runtime & _names(EXTRAS["dev"]), "a package is both a runtime dependency and a dev extra"
    assert {"pytest", "ruff", "import-linter", "mlflow", "ubiops", "schemathesis"} <= _names(EXTRAS["dev"])
    for r in RUNTIME + [r for reqs in EXTRAS.values() for r in reqs]:
        assert str(r.specifier).startswith("=="), f"{r} is not pinned"


def test_the_serving_base_is_declared_once_and_documented_as_it_is():
    declared = [str(r) for r in EXTRAS["serving-base"]]
    assert declared == list(SERVING_BASE)
    assert set(SERVING_BASE) <= {str(r) for r in EXTRAS["dev"]}  # tests serve on the interpreter, as such installs do
    doc = (ROOT / "docs" / "compute.md").read_text()
    section = doc.split("### The base serving environment", 1)[1].split("\n#", 1)[0]
    documented = re.findall(r"^- `([^`]+)`", section, flags=re.MULTILINE)
    assert documented == list(SERVING_BASE), documented
    assert "modelharbor[serving-base]" in section


def _runtime_closure() -> set[str]:
    """Every distribution a runtime-only install holds: the runtime requirements and theirs, with their extras."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(canonicalize_name(r.name), frozenset(r.extras)) for r in RUNTIME]
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        for line in metadata.requires(name) or []:
            req = Requirement(line)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in ("", *extras)):
                todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    return {name for name, _ in seen}


def _imported_top_levels(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_server_imports_only_the_standard_library_and_its_runtime_dependencies():
    """Every import in src/ (lazy ones inside functions included) resolves to the standard library, ModelHarbor
    itself or a distribution a runtime-only install has: no server code needs a dev extra."""
    closure = _runtime_closure()
    assert {"fastapi", "uvicorn", "uvloop", "boto3", "botocore", "pyyaml"} <= closure
    assert not closure & DEV_TOOLS, sorted(closure & DEV_TOOLS)
    owners = metadata.packages_distributions()
    outside = {}
    for path in sorted(SRC.rglob("*.py")):
        for name in _imported_top_levels(path) - set(sys.stdlib_module_names) - {"modelharbor", "__future__"}:
            dists = {canonicalize_name(d) for d in owners.get(name, [name])}
            if not dists & closure:
                outside.setdefault(name, []).append(str(path.relative_to(ROOT)))
    assert not outside, f"imports of packages a runtime-only install lacks: {outside}"


def test_the_worker_program_needs_only_the_standard_library():
    """worker_main.py runs in deployments' own environments, which may hold nothing but their requirements."""
    imported = _imported_top_levels(SRC / "compute" / "worker_main.py")
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
