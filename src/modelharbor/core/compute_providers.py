"""Compute providers and compute tiers: the execution backends this server has, and the sizes each can run.

Read-mostly and derived, never stored: a provider is one of the server's executors (today the local executor,
``compute/local/``; a distributed engine later), described by the composition root (services.py). Its compute
tiers are the organisation's hardware tiers (core/hardware_tiers.py) it can run — the local executor runs every
tier that asks for no GPU. A compute tier's id is its hardware tier's id. The full lists are for admins of the
organisation; :meth:`ComputeProviderService.selectable_tiers` is what any member may pick (visible, unarchived
tiers of the providers). Providers come from the server's configuration, so creating, changing or deleting one
through an API is refused (``NotSupported``): Domino's admin routes answer that (docs/dialects/domino.md, gaps).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modelharbor.core.clock import now
from modelharbor.core.hardware_tiers import HardwareTier, HardwareTierService
from modelharbor.core.projects import is_org_admin
from modelharbor.domain.errors import Forbidden, NotFound
from modelharbor.domain.principal import Action, Principal, require


@dataclass(frozen=True)
class ProviderType:
    id: str
    name: str
    description: str
    configuration_schema: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ComputeProvider:
    id: str
    name: str
    type: ProviderType
    configuration: dict[str, Any]
    max_gpus: int = 0  # GPUs one workload may get here: tiers asking for more are not this provider's
    since: datetime = field(default_factory=now)

    def runs(self, tier: HardwareTier) -> bool:
        return tier.gpus <= self.max_gpus


LOCAL_TYPE = ProviderType(
    "local",
    "local",
    "Worker processes on the server's machine, isolated by bubblewrap, limited by cgroups (docs/compute.md)",
    {"type": "object", "properties": {}, "additionalProperties": False},
)


@dataclass(frozen=True)
class ComputeTier:
    provider: ComputeProvider
    tier: HardwareTier

    @property
    def id(self) -> str:
        return self.tier.id


@dataclass(frozen=True)
class ProviderCard:
    provider: ComputeProvider
    default_tier_id: str | None


class ComputeProviderService:
    def __init__(self, tiers: HardwareTierService, providers: tuple[ComputeProvider, ...]):
        self.tiers = tiers
        self.providers = providers

    def provider_types(self, principal: Principal) -> list[ProviderType]:
        self._require_admin(principal)
        return list({p.type.id: p.type for p in self.providers}.values())

    def list_providers(self, principal: Principal) -> list[ProviderCard]:
        self._require_admin(principal)
        tiers, _ = self.tiers.list_tiers(principal)
        return [
            ProviderCard(p, next((t.id for t in tiers if t.is_default and p.runs(t)), None)) for p in self.providers
        ]

    def get_provider(self, principal: Principal, provider_id: str) -> ComputeProvider:
        """The provider (admins), for a write that is then refused, or NotFound."""
        self._require_admin(principal)
        return self._provider(provider_id)

    def list_tiers(
        self,
        principal: Principal,
        *,
        provider_id: str | None = None,
        search: str | None = None,
        selectable: bool = False,
    ) -> list[ComputeTier]:
        """Every provider's tiers (admins), or the ones the caller may pick (``selectable``: visible, unarchived),
        optionally of one provider and whose name holds ``search`` (any case)."""
        if not selectable:
            self._require_admin(principal)
        providers = self.providers if provider_id is None else (self._provider(provider_id),)
        tiers, _ = self.tiers.list_tiers(principal)
        needle = (search or "").lower()
        return [
            ComputeTier(p, t)
            for p in providers
            for t in tiers
            if p.runs(t) and needle in t.name.lower() and (t.is_visible or not selectable)
        ]

    def get_tier(self, principal: Principal, tier_id: str) -> ComputeTier:
        self._require_admin(principal)
        tier = self.tiers.get_tier(principal, tier_id)
        for p in self.providers:
            if p.runs(tier):
                return ComputeTier(p, tier)
        raise NotFound(f"Compute tier {tier_id!r} not found: no provider of this server can run it")

    def _provider(self, provider_id: str) -> ComputeProvider:
        for p in self.providers:
            if p.id == provider_id:
                return p
        raise NotFound(f"Compute provider {provider_id!r} not found")

    @staticmethod
    def _require_admin(principal: Principal) -> None:
        require(principal, Action.SERVING_READ, principal.org_id, what="compute provider")
        if not is_org_admin(principal):
            raise Forbidden("only an admin of the organisation may manage compute providers and tiers")
