"""Kore.ai's deploy body into the core's :class:`~modelharbor.domain.inputs.DeploySettings`, in the vendor's words.

``POST /api/public/models/{modelId}/deploy`` sends ``{name, deviceType, hyperParameters: {temperature, maxTokens,
topP, topK, stopSequence?}, scalingParameters?: {minReplicas, maxReplicas, maxBatchSize, scaleUpDelay,
scaleDownDelay}, optimizationInfo?, isDeployedPreviously?}`` (the vendor sample spells the last
``isDeployedPreviouly``; both are read and ignored). The first fault found answers a 400 naming it. Pure.
"""

from __future__ import annotations

from typing import Any

from modelharbor.api.params import Wording
from modelharbor.domain.errors import InvalidInput
from modelharbor.domain.inputs import DeploySettings

NUMBER = Wording(
    missing="'{name}' is required ({low} to {high}).",
    invalid="'{name}' must be {what} from {low} to {high}.",
    out_of_range="'{name}' must be {what} from {low} to {high}.",
)
DEFAULT_IDLE = 300


def _number(body: dict[str, Any], key: str, low: float, high: float, *, required: bool, integer: bool = False):
    value = body.get(key)
    what = "an integer" if integer else "a number"
    if value is None:
        if required:
            raise NUMBER.error(NUMBER.missing, name=key, low=low, high=high, what=what)
        return None
    ok = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok:
        raise NUMBER.error(NUMBER.invalid, name=key, low=low, high=high, what=what, value=value)
    if not low <= value <= high:
        raise NUMBER.error(NUMBER.out_of_range, name=key, low=low, high=high, what=what, value=value)
    return value


def deploy_settings(body: Any) -> DeploySettings:
    """The deploy body as the vendor documents it."""
    if not isinstance(body, dict):
        raise InvalidInput("the deploy body must be a JSON object")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 256:
        raise InvalidInput("'name' is required: 1 to 256 characters.")
    device = body.get("deviceType")
    if not isinstance(device, str) or not device:
        raise InvalidInput("'deviceType' is required (any device profile name; ModelHarbor runs on CPU here).")
    hyper = body.get("hyperParameters")
    if not isinstance(hyper, dict):
        raise InvalidInput("'hyperParameters' is required: {temperature, maxTokens, topP, topK, stopSequence?}.")
    temperature = _number(hyper, "temperature", 0, 2, required=True)
    max_tokens = _number(hyper, "maxTokens", 0, 512, required=True, integer=True)
    top_p = _number(hyper, "topP", 0, 1, required=True)
    top_k = _number(hyper, "topK", 1, 100, required=True, integer=True)
    stop = hyper.get("stopSequence")
    if stop is not None and (not isinstance(stop, list) or not all(isinstance(x, str) for x in stop)):
        raise InvalidInput("'stopSequence' must be a list of strings.")
    scaling = body.get("scalingParameters") or {}
    if not isinstance(scaling, dict):
        raise InvalidInput("'scalingParameters' must be an object.")
    lo = _number(scaling, "minReplicas", 1, 10, required=False, integer=True) or 1
    hi = _number(scaling, "maxReplicas", 1, 50, required=False, integer=True) or max(lo, 1)
    _number(scaling, "maxBatchSize", 1, 256, required=False, integer=True)
    _number(scaling, "scaleUpDelay", 1, 1000, required=False, integer=True)
    idle = _number(scaling, "scaleDownDelay", 50, 2000, required=False, integer=True)
    if lo > hi:
        raise InvalidInput("'minReplicas' cannot be more than 'maxReplicas'.")
    optimisation = body.get("optimizationInfo")
    if optimisation is not None and not isinstance(optimisation, dict):
        raise InvalidInput("'optimizationInfo' must be an object.")
    return DeploySettings(
        name=name,
        device=device,
        temperature=temperature,
        max_tokens=max_tokens,
        top_p=top_p,
        top_k=top_k,
        stop=tuple(stop or ()),
        min_instances=lo,
        max_instances=hi,
        idle_seconds=idle or DEFAULT_IDLE,
    )
