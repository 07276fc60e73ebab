"""The registry and tracking packages' public interfaces: other modules use their public names only, and their
modules stay small (as tests/core/test_serving_package.py holds serving to)."""

import importlib
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "modelharbor"
# package -> the names its services go by elsewhere (services.registry, self.tracking, …)
PACKAGES = {
    "registry": ("registry", "reviews", "model_files", "run_registration"),
    "tracking": ("tracking", "artifacts"),
}


def outside_modules(package: Path):
    return [p for p in SRC.rglob("*.py") if package not in p.parents]


@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_no_module_outside_the_package_calls_a_private_member_of_it(name):
    # a private member reached through one of the package's services
    private_call = re.compile(rf"\b(?:{'|'.join(PACKAGES[name])})\._[a-z]")
    offenders = [
        f"{p.relative_to(SRC)}:{n}: {line.strip()}"
        for p in outside_modules(SRC / "core" / name)
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if private_call.search(line)
    ]
    assert offenders == []


@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_no_module_outside_the_package_imports_a_private_name_of_it(name):
    private_import = re.compile(rf"from modelharbor\.core\.{name}(?:\.\w+)? import \(?([^)]*)\)?", re.S)
    offenders = []
    for p in outside_modules(SRC / "core" / name):
        for match in private_import.finditer(p.read_text()):
            names = [n.strip().split(" as ")[0] for n in match.group(1).split(",")]
            offenders += [f"{p.relative_to(SRC)}: {n}" for n in names if n.startswith("_")]
    assert offenders == []


@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_every_module_of_the_package_is_under_800_lines_and_says_what_it_owns(name):
    for p in sorted((SRC / "core" / name).glob("*.py")):
        text = p.read_text()
        assert len(text.splitlines()) < 800, p.name
        assert text.startswith('"""'), p.name


@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_the_package_exports_what_its_init_lists(name):
    module = importlib.import_module(f"modelharbor.core.{name}")
    assert [n for n in module.__all__ if not hasattr(module, n)] == []
