"""api/inputs.py: the wire values the native API, Domino and UbiOps send alike, checked with the messages the core
answered when it took them untyped, in the order it checked them, and handed on typed (issue 14). Pure: no server."""

from __future__ import annotations

import pytest

from modelharbor.api.inputs import (
    deployment_in,
    deployment_patch,
    env_var_in,
    environment_in,
    pipeline_in,
    pipeline_version_in,
    request_ids,
    request_status,
    stage_list,
    tag_in,
    version_in,
)
from modelharbor.domain.errors import InvalidInput
from modelharbor.domain.inputs import UNSET, DeploymentIn, FieldIn, Unnamed, VersionIn, name_in


def refused(parse, *args, **kw) -> str:
    with pytest.raises(InvalidInput) as info:
        parse(*args, **kw)
    return str(info.value)


def test_stage_lists_answer_the_first_fault_in_order():
    assert stage_list(["None", "Dev"]) == ["None", "Dev"]
    assert refused(stage_list, "x") == "'stages' must be a non-empty list of stage names."
    assert refused(stage_list, []) == "'stages' must be a non-empty list of stage names."
    assert refused(stage_list, ["a"] * 21) == "A project may have at most 20 stages, not 21."
    assert refused(stage_list, [" a", 5]).startswith("Invalid stage name ' a'")  # the string's fault comes first
    assert refused(stage_list, ["a", 5]).startswith("Invalid stage name 5:")
    assert refused(stage_list, ["a", "A", 5]).startswith("Stage 'A' appears twice")


def test_deployments_typed_with_the_core_messages():
    spec = deployment_in({"name": "d", "input_fields": [{"name": "x", "data_type": "int"}], "labels": {"k": 5}})
    assert spec == DeploymentIn(
        name="d",
        input_type="structured",
        output_type="structured",
        input_fields=(FieldIn("x", "int"),),
        output_fields=None,
        labels={"k": "5"},
    )
    assert refused(deployment_in, {"name": 5}).startswith("Invalid deployment name 5:")
    assert refused(deployment_in, {"name": "d", "supports_request_format": None}) == (
        "'supports_request_format' must be a boolean."
    )
    # fields before description, description before labels: the core's order
    assert refused(deployment_in, {"name": "d", "labels": 5, "description": 5, "input_fields": 5}).startswith(
        "'input_fields' must be a list"
    )
    assert refused(deployment_in, {"name": "d", "labels": 5, "description": 5}).startswith("'description' must be")
    patch = deployment_patch({"default_version": 5, "name": None})
    assert patch.name is None and isinstance(patch.default_version, Unnamed)
    assert refused(deployment_patch, {"name": "P"}, "pipeline").startswith("Invalid pipeline name 'P'")


def test_versions_check_numbers_in_order_with_their_ranges():
    body = {"version": "v1", "environment_name": 0, "environment": 0, "description": None, "ports": [1]}
    spec = version_in(body, creating=True)  # a falsy environment: the newest base environment, as it always was
    assert (spec.environment, spec.description, dict(spec.settings)) == ("", "", {"ports": [1]})
    assert version_in({"version": "v1", "environment_name": 0}, creating=True).environment is None
    assert version_in({}, creating=False) == VersionIn()
    assert refused(version_in, {}, creating=True).startswith("Invalid version name None:")
    assert refused(version_in, {"version": "v1", "environment_name": 5}, creating=True) == (
        "'environment_name' must be a string."
    )
    assert refused(version_in, {"version": "v1", "minimum_instances": True}, creating=True) == (
        "'minimum_instances' must be an integer from 0 to 20."
    )
    # a new version's bounds are checked against the defaults, before the numbers after them
    assert refused(version_in, {"version": "v1", "minimum_instances": 6, "maximum_idle_time": "x"}, creating=True) == (
        "'minimum_instances' cannot be more than 'maximum_instances'."
    )
    assert refused(version_in, {"version": "v1", "description": 5, "minimum_instances": "x"}, creating=True) == (
        "'description' must be a string of at most 400 characters."
    )
    assert refused(version_in, {"request_retention_mode": 5}, creating=False).startswith(
        "'request_retention_mode' must be one of"
    )
    assert repr(version_in({"environment_tag": 5}, creating=False).environment_tag) == "5"


def test_names_that_are_no_strings_name_nothing_and_show_as_sent():
    assert name_in(None) is None and name_in("v1") == "v1"
    for value, shown in ((5, "5"), ([1], "[1]"), ({"a": 1}, "{'a': 1}"), (False, "False")):
        named = name_in(value)
        assert isinstance(named, Unnamed) and isinstance(named, str)
        assert repr(named) == shown and f"{named}" == shown and f"{named!r}" == shown
        assert not named.isprintable() and named != shown  # it matches no name


def test_environments_env_vars_pipelines_and_requests():
    assert environment_in({"name": "e", "base_environment": 0}) == ("e", None, None, None)
    assert repr(environment_in({"name": "e", "base_environment": 5})[3]) == "5"
    assert refused(environment_in, {"name": 5}) == "'name' must be 1 to 256 printable characters."
    assert refused(environment_in, {"name": "", "description": 5}) == "'name' must be 1 to 256 printable characters."
    var = env_var_in({"name": "A", "value": "v"}, creating=True)
    assert (var.name, var.value, var.secret) == ("A", "v", False)
    assert refused(env_var_in, {"name": "A", "secret": "yes", "value": 5}, creating=True) == (
        "'secret' must be a boolean."
    )
    assert refused(env_var_in, {"name": "A"}, creating=True) == "'value' is required (it may be an empty string)."
    assert env_var_in({"secret": None}, creating=False).secret is None
    assert pipeline_in({"name": "p", "input_type": "plain"}).output_type == "plain"
    assert pipeline_in({"name": "p", "input_type": "plain", "output_type": None}).output_type == "structured"
    assert pipeline_version_in({}, creating=False).metadata is UNSET
    assert pipeline_version_in({"metadata": None}, creating=False).metadata is None
    assert request_ids(["a", "b"]) == ["a", "b"]
    for bad in (5, [], ["a", 5], ["a"] * 251):
        assert refused(request_ids, bad) == "Send a JSON array of 1 to 250 request ids."
    assert request_status({"status": "cancelled"}) == "cancelled"
    for bad in ({}, {"status": 5}, {"status": "done"}, {"status": "cancelled", "x": 1}):
        assert refused(request_status, bad).startswith("A request can only be changed to")


def test_environment_tags():
    assert tag_in({}, creating=True) == (None, True, None)
    assert tag_in({}, creating=False) == (None, None, None)
    assert tag_in({"name": "gpu-1.0", "supports_request_format": False}, creating=True) == ("gpu-1.0", False, None)
    assert tag_in({"name": "ignored"}, creating=False)[0] is None  # a tag is not renamed
    assert refused(tag_in, {"name": 3, "supports_request_format": "x"}, creating=True) == (
        "'supports_request_format' must be a boolean."
    )
    assert refused(tag_in, {"name": 3}, creating=True).startswith("Invalid tag name 3:")
    status = tag_in({"status": 5}, creating=False)[2]
    assert isinstance(status, Unnamed) and status != "success"
