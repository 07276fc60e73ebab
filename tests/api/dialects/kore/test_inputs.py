"""Kore.ai's deploy body read at the edge (api/dialects/kore/inputs.py) into the core's DeploySettings, in the
vendor's words; the core's own checks of the typed settings (core/catalogue/model_jobs.py)."""

from __future__ import annotations

import pytest

from modelharbor.api.dialects.kore.inputs import deploy_settings
from modelharbor.core.catalogue.model_jobs import deploy_payload
from modelharbor.domain.errors import InvalidInput
from modelharbor.domain.inputs import DeploySettings

HYPER = {"temperature": 0.5, "maxTokens": 64, "topP": 0.9, "topK": 40}
BODY = {"name": "my llm", "deviceType": "g5.xlarge", "hyperParameters": HYPER}


def test_a_full_body_and_the_defaults():
    full = {
        **BODY,
        "isDeployedPreviouly": True,  # the vendor sample's spelling: read and ignored
        "hyperParameters": {**HYPER, "stopSequence": ["###"], "temperature": 1},
        "scalingParameters": {"minReplicas": 2, "maxReplicas": 30, "scaleDownDelay": 60, "maxBatchSize": 8},
        "optimizationInfo": {},
    }
    assert deploy_settings(full) == DeploySettings(
        "my llm", "g5.xlarge", 1, 64, 0.9, 40, ("###",), min_instances=2, max_instances=30, idle_seconds=60
    )
    settings = deploy_settings(BODY)
    assert (settings.stop, settings.min_instances, settings.max_instances, settings.idle_seconds) == ((), 1, 1, 300)
    assert deploy_settings({**BODY, "scalingParameters": {"minReplicas": 3}}).max_instances == 3


@pytest.mark.parametrize(
    "body,message",
    [
        ([], "the deploy body must be a JSON object"),
        ({**BODY, "name": " "}, "'name' is required: 1 to 256 characters."),
        ({**BODY, "name": "x" * 257}, "'name' is required: 1 to 256 characters."),
        (
            {**BODY, "deviceType": 5},
            "'deviceType' is required (any device profile name; ModelHarbor runs on CPU here).",
        ),
        (
            {**BODY, "hyperParameters": []},
            "'hyperParameters' is required: {temperature, maxTokens, topP, topK, stopSequence?}.",
        ),
        ({**BODY, "hyperParameters": {**HYPER, "temperature": None}}, "'temperature' is required (0 to 2)."),
        ({**BODY, "hyperParameters": {**HYPER, "temperature": 3}}, "'temperature' must be a number from 0 to 2."),
        ({**BODY, "hyperParameters": {**HYPER, "maxTokens": 1.5}}, "'maxTokens' must be an integer from 0 to 512."),
        ({**BODY, "hyperParameters": {**HYPER, "topK": True}}, "'topK' must be an integer from 1 to 100."),
        ({**BODY, "hyperParameters": {**HYPER, "topP": "1"}}, "'topP' must be a number from 0 to 1."),
        ({**BODY, "hyperParameters": {**HYPER, "stopSequence": "###"}}, "'stopSequence' must be a list of strings."),
        ({**BODY, "scalingParameters": [1]}, "'scalingParameters' must be an object."),
        ({**BODY, "scalingParameters": {"maxReplicas": 51}}, "'maxReplicas' must be an integer from 1 to 50."),
        ({**BODY, "scalingParameters": {"scaleDownDelay": 10}}, "'scaleDownDelay' must be an integer from 50 to 2000."),
        (
            {**BODY, "scalingParameters": {"minReplicas": 5, "maxReplicas": 2}},
            "'minReplicas' cannot be more than 'maxReplicas'.",
        ),
        ({**BODY, "optimizationInfo": "fast"}, "'optimizationInfo' must be an object."),
    ],
)
def test_faults_in_the_vendors_words(body, message):
    with pytest.raises(InvalidInput) as err:
        deploy_settings(body)
    assert err.value.message == message


def test_the_core_keeps_its_rules_on_typed_settings():
    payload = deploy_payload(deploy_settings({**BODY, "scalingParameters": {"minReplicas": 10, "maxReplicas": 50}}))
    assert (payload["min"], payload["max"], payload["params"]["maxTokens"]) == (10, 20, 64)  # at most 20 instances
    with pytest.raises(InvalidInput):
        deploy_payload(DeploySettings("n", "cpu", 0, 1, 0, 1, min_instances=3, max_instances=2))
    with pytest.raises(InvalidInput):
        deploy_payload(DeploySettings(" ", "cpu", 0, 1, 0, 1))
