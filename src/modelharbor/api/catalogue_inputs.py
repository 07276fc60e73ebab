"""The pretrained-model catalogue's bodies into the core's typed inputs, as Django REST Framework's serializers read
them: UFDL's (``api/dialects/ufdl/``) and the native API's catalogue routes send the same bodies and answer the same
per-field messages.

A parse function never raises: it collects every field's fault in the body (``faults`` of the typed input: the
wrong type, a null, a blank or over-long text, a required field missing, an invalid choice) and hands them to the
core with the values that are right. The core checks the caller and the object first (403, 404), then adds what it
finds in the database (no such framework, domain or licence) and answers all of them in one ``FieldErrors``, DRF's
``{"field": ["message", …]}``, storing nothing. Pure: no services, no queries.
"""

from __future__ import annotations

from typing import Any

from modelharbor.core.catalogue import (
    NON_FIELD,
    REQUIRED,
    missing_name,
    subdescriptor_faults,
    text_fault,
    url_fault,
)
from modelharbor.domain.inputs import FrameworkIn, LicenceIn, PretrainedModelIn, SubdescriptorEdit

MODEL_TEXTS = {  # field → (max length, blank allowed, required)
    "name": (200, False, True),
    "url": (200, False, True),
    "description": (None, True, False),
    "metadata": (None, True, False),
}
FRAMEWORK_TEXTS = {"name": 32, "version": 32}
LICENCE_TEXTS = {"name": 100, "url": 200}
PK_LIMIT = 2**31


def _not_a_dict(body: Any) -> dict[str, tuple[str, ...]]:
    return {NON_FIELD: (f"Invalid data. Expected a dictionary, but got {type(body).__name__}.",)}


def _text(
    body: dict, key: str, faults: dict, *, max_len: int | None, blank: bool, required: bool, numbers: bool
) -> str | None:
    """A ``CharField``: the value, or None with its fault noted (``numbers``: a number is read as its text)."""
    if key not in body:
        if required:
            faults[key] = (REQUIRED,)
        return None
    v = body[key]
    if v is None:
        faults[key] = ("This field may not be null.",)
        return None
    kinds = (str, int, float) if numbers else (str,)
    if not isinstance(v, kinds) or isinstance(v, bool):
        faults[key] = ("Not a valid string.",)
        return None
    v = str(v)
    if fault := text_fault(v, max_len=max_len, blank=blank):
        faults[key] = (fault,)
        return None
    return v


def model_in(body: Any, *, partial: bool) -> PretrainedModelIn:
    """A pretrained model's body (``partial``: a PATCH, where no field is required)."""
    if not isinstance(body, dict):
        return PretrainedModelIn(faults=_not_a_dict(body))
    faults: dict[str, tuple[str, ...]] = {}
    texts = {
        key: _text(body, key, faults, max_len=m, blank=b, required=r and not partial, numbers=True)
        for key, (m, b, r) in MODEL_TEXTS.items()
    }
    framework = domain = licence = None
    if "framework" in body:  # a PrimaryKeyRelatedField
        v = body["framework"]
        if isinstance(v, bool) or not isinstance(v, (int, str)) or (isinstance(v, str) and not v.isdecimal()):
            kind = type(v).__name__.replace("NoneType", "null")
            faults["framework"] = (f"Incorrect type. Expected pk value, received {kind}.",)
        elif not 0 < int(v) < PK_LIMIT:
            faults["framework"] = (f'Invalid pk "{v}" - object does not exist.',)
        else:
            framework = int(v)
    elif not partial:
        faults["framework"] = (REQUIRED,)
    if "domain" in body:  # a SlugRelatedField on the name
        v = body["domain"]
        if isinstance(v, str):
            domain = v
        else:
            faults["domain"] = (missing_name(v),)
    elif not partial:
        faults["domain"] = (REQUIRED,)
    if "licence" in body:  # by name; the TypeScript client sends a pk
        v = body["licence"]
        if isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool) and 0 < v < PK_LIMIT):
            licence = v
        else:
            faults["licence"] = (missing_name(v),)
    elif not partial:
        faults["licence"] = (REQUIRED,)
    return PretrainedModelIn(**texts, framework=framework, domain=domain, licence=licence, faults=faults)


def _ref_texts(body: dict, limits: dict[str, int], partial: bool) -> tuple[dict[str, str | None], dict]:
    faults: dict[str, tuple[str, ...]] = {}
    values = {
        key: _text(body, key, faults, max_len=limit, blank=False, required=not partial, numbers=False)
        for key, limit in limits.items()
    }
    return values, faults


def framework_in(body: Any, *, partial: bool = False) -> FrameworkIn:
    """A framework's body ``{name, version}``."""
    if not isinstance(body, dict):
        return FrameworkIn(faults=_not_a_dict(body))
    values, faults = _ref_texts(body, FRAMEWORK_TEXTS, partial)
    return FrameworkIn(**values, faults=faults)


def licence_in(body: Any, *, partial: bool = False) -> LicenceIn:
    """A licence's body ``{name, url}`` (an http(s) URL)."""
    if not isinstance(body, dict):
        return LicenceIn(faults=_not_a_dict(body))
    values, faults = _ref_texts(body, LICENCE_TEXTS, partial)
    if values["url"] is not None and (fault := url_fault(values["url"])):
        faults["url"] = (fault,)
        values["url"] = None
    return LicenceIn(**values, faults=faults)


def subdescriptor_edit(body: Any) -> SubdescriptorEdit:
    """``{"method": "add" | "remove", "type": "permissions" | …, "names": [...]}``: the fields missing, else every
    field's fault."""
    if not isinstance(body, dict):
        return SubdescriptorEdit(faults={NON_FIELD: ("Invalid data. Expected a dictionary.",)})
    missing = {k: (REQUIRED,) for k in ("method", "type", "names") if k not in body}
    if missing:
        return SubdescriptorEdit(faults=missing)
    method, kind, names = body["method"], body["type"], body["names"]
    faults = {k: tuple(v) for k, v in subdescriptor_faults(method, kind, names).items()}
    if faults:
        return SubdescriptorEdit(faults=faults)
    return SubdescriptorEdit(method=method, kind=kind, names=tuple(map(str, names)))
