"""Dependencies of the native API: the caller's Principal from ``Authorization: Bearer <key>``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from modelharbor.api.common import bearer_token, services_of
from modelharbor.domain.errors import Unauthenticated
from modelharbor.domain.principal import Principal
from modelharbor.services import Services


def get_services(request: Request) -> Services:
    return services_of(request)


def get_principal(request: Request) -> Principal:
    token = bearer_token(request)
    if token is None:
        raise Unauthenticated("send your API key as 'Authorization: Bearer <key>'")
    return services_of(request).identity.authenticate_key(token)


ServicesDep = Annotated[Services, Depends(get_services)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
