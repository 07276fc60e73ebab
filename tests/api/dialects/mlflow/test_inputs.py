"""MLflow's wire values into the core's typed arguments (api/dialects/mlflow/inputs.py): the types checked at the
edge with MLflow's messages, and, over HTTP, requests with several faults still answering the fault the registry
and tracking always reported first."""

from __future__ import annotations

import pytest

from modelharbor.api.dialects.mlflow import inputs
from modelharbor.domain.errors import InvalidInput, NotFound
from modelharbor.domain.inputs import TagIn
from tests.conftest import ADMIN_KEY

API = "/api/2.0/mlflow"


def fails(error: type, match: str, fn, *args):
    with pytest.raises(error) as exc:
        fn(*args)
    assert exc.value.message == match, exc.value.message


# --- registry ------------------------------------------------------------------------------------------------
def test_version_numbers():
    assert [inputs.version_in(v) for v in ("1", 2, 3.0, " 4", "0005")] == [1, 2, 3, 4, 5]
    for missing in (None, "", True, False):
        fails(InvalidInput, "Missing value for required parameter 'version'.", inputs.version_in, missing)
    fails(InvalidInput, "Parameter 'version' must be an integer, got 'abc'.", inputs.version_in, "abc")
    fails(InvalidInput, "Parameter 'version' must be an integer, got '1.5'.", inputs.version_in, "1.5")
    fails(InvalidInput, "Parameter 'version' must be an integer, got 1.5.", inputs.version_in, 1.5)
    fails(InvalidInput, "Parameter 'version' must be an integer, got [1].", inputs.version_in, [1])
    # out of range: no such version, named as it was sent
    fails(NotFound, "Model Version (version=00) not found", inputs.version_in, "00")
    fails(NotFound, "Model Version (version=-1) not found", inputs.version_in, -1)
    fails(NotFound, "Model Version (version=99999999999) not found", inputs.version_in, "99999999999")


def test_names_texts_aliases_and_tags():
    assert inputs.name_in("iris") == "iris" and inputs.model_name_in("") == ""  # the core refuses an empty name
    fails(InvalidInput, "Missing value for required parameter 'name'.", inputs.name_in, None)
    fails(InvalidInput, "Parameter 'new_name' must be a string, not int.", inputs.name_in, 5, "new_name")
    fails(InvalidInput, "Invalid model name 'a/b'. Names cannot contain '/' or ':'.", inputs.name_in, "a/b")
    fails(InvalidInput, "Parameter 'name' must be a string, not list.", inputs.model_name_in, ["m"])
    assert inputs.text_in(None, "description") is None
    fails(InvalidInput, "Parameter 'description' must be a string, not bool.", inputs.text_in, True, "description")
    fails(InvalidInput, "Missing value for required parameter 'source'.", inputs.required_text_in, None, "source")

    fails(InvalidInput, "Registered model alias name cannot be empty.", inputs.alias_in, None)
    fails(InvalidInput, "Parameter 'alias' must be a string, not int.", inputs.alias_in, 5)
    fails(InvalidInput, "'latest' alias name (case insensitive) is reserved.", inputs.new_alias_in, "latest")
    assert inputs.alias_in("latest") == "latest"  # reading or deleting it is the registry's business

    assert inputs.tag_pair_in("k", None) == ("k", "")
    fails(InvalidInput, "Parameter 'key' must be a string, not int.", inputs.tag_pair_in, 5, "v")
    # the key's rule before the value's type, as the registry checks them
    with pytest.raises(InvalidInput, match="Invalid tag key '..'"):
        inputs.tag_pair_in("..", 5)
    fails(InvalidInput, "Parameter 'value of tag 'k'' must be a string, not int.", inputs.tag_pair_in, "k", 5)
    assert inputs.tags_in([{"key": "a", "value": "1"}]) == {"a": "1"} and inputs.tags_in({"b": "2"}) == {"b": "2"}
    for bad in ("nope", [5], 7):
        fails(InvalidInput, "Parameter 'tags' must be a list of {key, value} objects.", inputs.tags_in, bad)


def test_stages():
    assert [inputs.stage_in(v) for v in ("Staging", None, 5, True)] == ["Staging", None, "5", "True"]
    assert inputs.stages_in(None) is None and inputs.stages_in(["Production", 1]) == ["Production", "1"]
    fails(InvalidInput, "Parameter 'stages' must be a list of stage names.", inputs.stages_in, "Production")
    with pytest.raises(InvalidInput, match="'None' is not an Active stage"):
        inputs.target_stage_in("None", True)
    assert inputs.target_stage_in("None", False) == "None"


# --- tracking ------------------------------------------------------------------------------------------------
def test_experiment_ids_and_names():
    assert [inputs.experiment_id_in(v) for v in ("0", 0, "12", 12)] == ["0", "0", "12", "12"]
    for bad, shown in (("abc", "'abc'"), ("²", "'²'"), (-1, "-1"), (True, "True"), (123456789012, "123456789012")):
        fails(NotFound, f"experiment {shown} does not exist", inputs.experiment_id_in, bad)
    assert inputs.experiment_name_in("e") == "e"
    fails(InvalidInput, "an experiment name is required", inputs.experiment_name_in, 5)


def test_keys_values_and_optional_names():
    assert inputs.key_values_in(None) == [] and inputs.key_values_in("") == []
    assert inputs.key_values_in([{"key": 5, "value": 3}, {"key": "k"}, {"key": "n", "value": None}]) == [
        TagIn("5", "3"),
        TagIn("k", ""),
        TagIn("n", ""),
    ]
    fails(InvalidInput, "tags must be a list of {key, value} objects", inputs.key_values_in, [5])
    fails(InvalidInput, "tag key must be a non-empty string of at most 250 characters, got 5", inputs.key_in, 5, "tag")
    assert inputs.tag_in({"key": "p", "value": 1.5}, "param") == TagIn("p", "1.5")
    assert [inputs.optional_text_in(v) for v in (None, "", 0, False, "r", 7)] == [None, None, None, None, "r", "7"]
    assert inputs.run_status_in(None) is None and inputs.run_status_in("bogus") == "bogus"  # the core says which
    with pytest.raises(InvalidInput, match="unknown run status 5"):
        inputs.run_status_in(5)


# --- the first fault, over HTTP ------------------------------------------------------------------------------
H = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        # the version's fault before the name's (the registry checks the number first)
        ("GET", "/model-versions/get", {"name": 5, "version": "abc"}, 400, "must be an integer, got 'abc'"),
        ("GET", "/model-versions/get", {"name": None, "version": "0"}, 404, "Model Version (version=0) not found"),
        ("DELETE", "/model-versions/delete", {"name": "", "version": 1.5}, 400, "must be an integer, got 1.5"),
        # a new name's grammar before the description's type
        ("POST", "/registered-models/create", {"name": "a/b", "description": 5}, 400, "Names cannot contain"),
        ("POST", "/registered-models/rename", {"name": 5, "new_name": "a:b"}, 400, "Names cannot contain"),
        # the description's NUL before the name's type
        ("PATCH", "/registered-models/update", {"name": 5, "description": "a\x00"}, 400, "NUL characters"),
        # a reserved alias, then the version, then the name
        ("POST", "/registered-models/alias", {"name": 5, "alias": "v1", "version": "x"}, 400, "is reserved"),
        ("POST", "/registered-models/alias", {"name": 5, "alias": "ok", "version": "x"}, 400, "got 'x'"),
        # archiving into an inactive stage before the name
        (
            "POST",
            "/model-versions/transition-stage",
            {"name": 5, "version": "1", "stage": "None", "archive_existing_versions": True},
            400,
            "'None' is not an Active stage",
        ),
        # a tag key's rule before its value's type, both before the name
        ("POST", "/model-versions/set-tag", {"name": 5, "version": 1, "key": "..", "value": 5}, 400, "tag key '..'"),
        ("POST", "/registered-models/get-latest-versions", {"name": 5, "stages": "x"}, 400, "list of stage names"),
        # an experiment id that names none before the new name's type
        ("POST", "/experiments/update", {"experiment_id": "abc", "new_name": 5}, 404, "experiment 'abc'"),
        ("POST", "/experiments/set-experiment-tag", {"experiment_id": "x", "key": 5}, 404, "experiment 'x'"),
        # a run's status before the run is looked up
        ("POST", "/runs/update", {"run_id": "0" * 32, "status": 5}, 400, "unknown run status 5"),
    ],
)
def test_several_faults_answer_the_first(client, method, path, body, status, message):
    resp = client.request(method, API + path, json=body, headers=H)
    assert resp.status_code == status, resp.text
    assert message in resp.json()["message"], resp.json()
