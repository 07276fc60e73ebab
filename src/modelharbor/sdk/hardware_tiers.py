"""``client.hardware_tiers``: the organisation's hardware tiers — the CPU, memory and GPU sizes workloads run with
(``/api/v1/hardware-tiers``). Everyone reads; admins create, change and archive."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelharbor.sdk.http import seg
from modelharbor.sdk.wire import HardwareTier

if TYPE_CHECKING:
    from modelharbor.sdk.client import Client

FIELDS = (
    "name",
    "cores",
    "cores_limit",
    "memory",
    "memory_limit",
    "gpus",
    "gpu_key",
    "cents_per_minute",
    "is_default",
    "is_visible",
)


class HardwareTiers:
    def __init__(self, client: Client):
        self._t = client._transport

    def list(self, *, include_archived: bool = False) -> list[HardwareTier]:
        """The tiers, the default first, then by name (non-admins: the visible ones)."""
        params = {"include_archived": "true"} if include_archived else None
        return self._t.call(list[HardwareTier], "GET", "/hardware-tiers", params=params)

    def get(self, tier_id: str) -> HardwareTier:
        return self._t.call(HardwareTier, "GET", f"/hardware-tiers/{seg(tier_id)}")

    def create(self, tier_id: str, name: str, *, cores: float, memory: int, **more: Any) -> HardwareTier:
        """A new tier: ``cores`` (may be fractional) and ``memory`` in bytes; ``more`` any of cores_limit,
        memory_limit (bytes), gpus, gpu_key, cents_per_minute, is_default, is_visible."""
        body = {"id": tier_id, "name": name, "cores": cores, "memory": memory, **_given(more)}
        return self._t.call(HardwareTier, "POST", "/hardware-tiers", json=body)

    def update(self, tier_id: str, **changes: Any) -> HardwareTier:
        """Change the named fields (those of :meth:`create`); None leaves a field as it is."""
        return self._t.call(HardwareTier, "PATCH", f"/hardware-tiers/{seg(tier_id)}", json=_given(changes))

    def archive(self, tier_id: str) -> HardwareTier:
        """Archive a tier (not the default: make another one the default first)."""
        return self._t.call(HardwareTier, "POST", f"/hardware-tiers/{seg(tier_id)}/archive")


def _given(values: dict[str, Any]) -> dict[str, Any]:
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise TypeError(f"unknown hardware tier field(s): {', '.join(sorted(unknown))}; use {', '.join(FIELDS)}")
    return {k: v for k, v in values.items() if v is not None}
