"""The serving package's public interface: other modules use its public names only, and its modules stay small."""

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "modelharbor"
PACKAGE = SRC / "core" / "serving"
# a private member reached through a serving service, or a private name imported from the package
PRIVATE_CALL = re.compile(r"\bserving\._[a-z]")
PRIVATE_IMPORT = re.compile(r"from modelharbor\.core\.serving(?:\.\w+)? import \(?([^)]*)\)?", re.S)


def outside_modules():
    return [p for p in SRC.rglob("*.py") if PACKAGE not in p.parents]


def test_no_module_outside_the_package_calls_a_private_member_of_serving():
    offenders = [
        f"{p.relative_to(SRC)}:{n}: {line.strip()}"
        for p in outside_modules()
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if PRIVATE_CALL.search(line)
    ]
    assert offenders == []


def test_no_module_outside_the_package_imports_a_private_name_of_it():
    offenders = []
    for p in outside_modules():
        for match in PRIVATE_IMPORT.finditer(p.read_text()):
            names = [n.strip().split(" as ")[0] for n in match.group(1).split(",")]
            offenders += [f"{p.relative_to(SRC)}: {n}" for n in names if n.startswith("_")]
    assert offenders == []


def test_every_module_of_the_package_is_under_800_lines_and_says_what_it_owns():
    for p in sorted(PACKAGE.glob("*.py")):
        text = p.read_text()
        assert len(text.splitlines()) < 800, p.name
        assert text.startswith('"""'), p.name
