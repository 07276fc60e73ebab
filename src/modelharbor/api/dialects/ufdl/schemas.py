"""UFDL's wire shapes as pydantic models: the error bodies (Django REST Framework's), the token exchange, the
answers (models, frameworks, licences, domains), the FilterSpec and the credentials.

The routes check request bodies themselves (DRF's field messages come from the core), so these models describe the
wire for the OpenAPI document, and :data:`INPUTS` says which route takes which (api/openapi.py writes it into the
document); mapping.py builds the answers.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from modelharbor.api.openapi import BYTES, JSON, Inputs, Takes

SECURITY = {
    "BearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "A UFDL access token (a JWT from POST /v1/auth/obtain) or a ModelHarbor API key",
    }
}


# --- errors ---------------------------------------------------------------------------------------
class TokenMessage(BaseModel):
    token_class: str
    token_type: str
    message: str


class Detail(BaseModel):
    """``{"detail": …}``; a bad token adds simplejwt's ``code`` (``token_not_valid``) and ``messages``."""

    detail: str
    code: str | None = None
    messages: list[TokenMessage] | None = None


class Error(RootModel[Detail | dict[str, list[str]]]):
    """Every error body: a :class:`Detail`, or field → messages for a validation problem."""


# --- auth -----------------------------------------------------------------------------------------
# A DRF CharField as the token views read it: required, not null, not blank; a number is taken as its text.
Char = Annotated[str, Field(pattern=r"\S")] | int | float


class Credentials(BaseModel):
    username: Char
    password: Char


class RefreshIn(BaseModel):
    refresh: Char


class VerifyIn(BaseModel):
    token: Char


class TokenPair(BaseModel):
    refresh: str
    access: str


class AccessToken(BaseModel):
    access: str


# --- catalogue ------------------------------------------------------------------------------------
class Framework(BaseModel):
    pk: int
    name: str
    version: str


class Licence(BaseModel):
    pk: int
    name: str
    url: str
    permissions: list[str]
    conditions: list[str]
    limitations: list[str]
    domains: list[str]


class Domain(BaseModel):
    pk: int
    name: str
    description: str


class PretrainedModel(BaseModel):
    url: str
    description: str
    name: str
    metadata: str
    pk: int
    framework: Framework
    domain: str  # the domain's description
    licence: str  # the licence's name
    data: bool
    creator: int | None
    creation_time: str
    deletion_time: str | None


def _text(most: int | None = None) -> Any:
    """A model's CharField: text (a number is taken as its text), not blank, at most ``most`` characters."""
    return Annotated[str, Field(max_length=most, pattern=r"\S")] | int | float


Pk = int | Annotated[str, Field(pattern=r"^[0-9]+$")]


class PretrainedModelIn(BaseModel):
    """A new model, or all of one (PUT)."""

    name: _text(200)  # type: ignore[valid-type]
    url: _text(200)  # type: ignore[valid-type]
    framework: Pk = Field(description="A framework's pk.")
    domain: str = Field(description="A domain's name, e.g. ic.")
    licence: str | int = Field(description="A licence's name, or its pk.")
    description: str | int | float = ""
    metadata: str | int | float = ""


class PretrainedModelPatch(BaseModel):
    """What a PATCH changes: any of a model's fields."""

    name: _text(200) | None = None  # type: ignore[valid-type]
    url: _text(200) | None = None  # type: ignore[valid-type]
    framework: Pk | None = None
    domain: str | None = None
    licence: str | int | None = None
    description: str | int | float | None = None
    metadata: str | int | float | None = None


def _name(most: int) -> Any:
    return Annotated[str, Field(max_length=most, pattern=r"\S")]


class FrameworkIn(BaseModel):
    name: _name(32)  # type: ignore[valid-type]
    version: _name(32)  # type: ignore[valid-type]


class FrameworkPatch(BaseModel):
    name: _name(32) | None = None  # type: ignore[valid-type]
    version: _name(32) | None = None  # type: ignore[valid-type]


Url = Annotated[str, Field(max_length=200, pattern=r"^https?://")]


class LicenceIn(BaseModel):
    """A licence's name and URL (its permissions, conditions, limitations and domains: ``…/subdescriptors``)."""

    name: _name(100)  # type: ignore[valid-type]
    url: Url


class LicencePatch(BaseModel):
    name: _name(100) | None = None  # type: ignore[valid-type]
    url: Url | None = None


class Subdescriptors(BaseModel):
    method: Literal["add", "remove"]
    type: Literal["permissions", "conditions", "limitations", "domains"]
    names: list[str | int]


class Download(BaseModel):
    """Only ``data`` is served (415 for any other ``filetype``); ``params`` are read and ignored."""

    filetype: str = "data"
    params: dict[str, str | list[str]] = {}


# --- the FilterSpec of a listing (api/filterspec.py) ----------------------------------------------
class _Expression(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str = Field(min_length=1)
    invert: bool = False


Scalar = str | int | float | bool


class Exact(_Expression):
    type: Literal["exact"]
    value: Scalar
    case_insensitive: bool = False


class Contains(_Expression):
    type: Literal["contains"]
    sub_string: str = Field(min_length=1)
    case_insensitive: bool = False


class IsNull(_Expression):
    type: Literal["isnull", "is_null"]


class Compare(_Expression):
    type: Literal["compare"]
    operator: Literal["<", ">", "<=", ">="]
    value: Scalar


FieldExpression = Exact | Contains | IsNull | Compare


class And(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["and"]
    sub_expressions: list[dict[str, Any]] = Field(min_length=2, description="exact, contains, isnull or compare.")
    invert: bool = False


class Or(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["or"]
    sub_expressions: list[dict[str, Any]] = Field(min_length=2, description="Field expressions, or and.")
    invert: bool = False


class Order(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str = Field(min_length=1)
    ascending: bool = True
    nulls_first: bool | None = None


class FilterSpec(BaseModel):
    """A listing's body (api/filterspec.py parses it; which fields each listing filters on: docs/dialects/ufdl.md)."""

    model_config = ConfigDict(extra="forbid")

    expressions: list[FieldExpression | And | Or] = Field([], max_length=100)
    order_by: list[Order] = []
    include_inactive: bool = False


LIST = Takes({JSON: FilterSpec | None}, required=False)  # null: no filter
INPUTS: Inputs = {
    ("POST", "/auth/obtain"): Takes({JSON: Credentials}),
    ("POST", "/auth/refresh"): Takes({JSON: RefreshIn}),
    ("POST", "/auth/verify"): Takes({JSON: VerifyIn}),
    ("POST", "/pretrained-models/list"): LIST,
    ("POST", "/pretrained-models/create"): Takes({JSON: PretrainedModelIn}),
    ("PUT", "/pretrained-models/{pk}"): Takes({JSON: PretrainedModelIn}),
    ("PATCH", "/pretrained-models/{pk}"): Takes({JSON: PretrainedModelPatch}),
    ("POST", "/pretrained-models/{pk}/data"): Takes({BYTES: bytes}),
    ("POST", "/pretrained-models/{pk}/download"): Takes({JSON: Download}, required=False, statuses=(415,)),
    ("POST", "/frameworks/list"): LIST,
    ("POST", "/frameworks/create"): Takes({JSON: FrameworkIn}),
    ("PUT", "/frameworks/{pk}"): Takes({JSON: FrameworkIn}),
    ("PATCH", "/frameworks/{pk}"): Takes({JSON: FrameworkPatch}),
    ("POST", "/domains/list"): LIST,
}
for _spelling in ("licences", "licenses"):
    INPUTS |= {  # type: ignore[operator]
        ("POST", f"/{_spelling}/list"): LIST,
        ("POST", f"/{_spelling}/create"): Takes({JSON: LicenceIn}),
        ("PUT", f"/{_spelling}/{{pk}}"): Takes({JSON: LicenceIn}),
        ("PATCH", f"/{_spelling}/{{pk}}"): Takes({JSON: LicencePatch}),
        ("PATCH", f"/{_spelling}/{{pk}}/subdescriptors"): Takes({JSON: Subdescriptors}),
    }
