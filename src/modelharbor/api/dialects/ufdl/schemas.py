"""UFDL's wire shapes as pydantic models: the error bodies (Django REST Framework's), the token exchange, the
answers (models, frameworks, licences, domains), the FilterSpec and the credentials.

The routes check request bodies themselves (DRF's field messages come from the core), so these models describe the
wire for the OpenAPI document; mapping.py builds the answers.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, RootModel

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
class Credentials(BaseModel):
    username: str
    password: str


class RefreshIn(BaseModel):
    refresh: str


class VerifyIn(BaseModel):
    token: str


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


class PretrainedModelIn(BaseModel):
    name: str
    url: str
    framework: int  # a pk
    domain: str  # a domain code, e.g. "ic"
    licence: str | int  # a name, or a pk
    description: str = ""
    metadata: str = ""


class Subdescriptors(BaseModel):
    method: Literal["add", "remove"]
    type: Literal["permissions", "conditions", "limitations", "domains"]
    names: list[str]


class Download(BaseModel):
    filetype: str = "data"
    params: dict[str, str | list[str]] = {}


class Order(BaseModel):
    field: str
    ascending: bool = True
    nulls_first: bool | None = None


class FilterSpec(BaseModel):
    """A listing's body (filters.py parses it; expressions are described in docs/dialects/ufdl.md)."""

    expressions: list[dict] = []
    order_by: list[Order] = []
    include_inactive: bool = False
