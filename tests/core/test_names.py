"""The registry's model-name rule as a pure function (domain/names.py): the same verdict and message the server
gives, importable without any server package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import modelharbor.domain.names as names
from modelharbor.core.registry.validation import validate_name
from modelharbor.domain.errors import InvalidInput
from modelharbor.domain.names import is_model_name, model_name_problem

SAMPLES = [
    "resnet18",
    "my model",
    "ünïcode ✓",
    "a.b-c_d",
    "x" * 256,
    "x" * 257,
    "",
    "   ",
    "a/b",
    "a:b",
    ".",
    "..",
    "..hidden",
    "a\x00b",
    "tab\there",
    "new\nline",
    None,
    3,
    ["list"],
]


@pytest.mark.parametrize("name", SAMPLES, ids=repr)
def test_the_pure_rule_is_the_servers(name):
    problem = model_name_problem(name)
    try:
        validate_name(name)
    except InvalidInput as exc:
        assert problem == exc.message
    else:
        assert problem is None
    assert is_model_name(name) == (problem is None)


def test_it_imports_only_the_standard_library():
    tree = ast.parse(Path(names.__file__).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= {"__future__", "posixpath"}, imported


def test_messages_name_the_parameter():
    assert model_name_problem(None, "registered_model_name") == (
        "Missing value for required parameter 'registered_model_name'."
    )
