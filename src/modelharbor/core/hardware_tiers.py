"""Hardware tiers: the sizes workloads run with — CPU cores (request and limit), memory (request and limit), GPUs,
a price in cents per minute — with Domino's flags (default, visible, global) and archiving, per organisation.

Rules:

- everyone in the organisation reads its tiers; non-admins see the visible ones only (and never archived ones
  unless asked); creating, changing and archiving takes an admin of the organisation (403 otherwise);
- ids are chosen by the creator (Domino's ``NewHardwareTierV1.id``: 1-100 letters, digits, ``.``, ``_``, ``-``),
  unique within the organisation (a duplicate is refused: 400 in Domino, never 409);
- exactly one tier is the default while any is unarchived: making a tier the default clears the flag on the
  others, and the default cannot be archived (make another one the default first);
- an organisation without any tier gets one on first use (``small``: 1 core, 4 GiB, the default), so a fresh
  server has a tier to run on; an admin may change or replace it;
- a workload names its tier by id or name (a UbiOps deployment version's ``instance_type_group_name`` or
  ``instance_type``; none: the default tier), checked when it is chosen (:meth:`~HardwareTierService.workload_tier`:
  unknown and archived tiers refused) and read when it starts (:meth:`~HardwareTierService.workload_limits`);
- the limits workloads get (:meth:`HardwareTierService.limits`): ``coresLimit`` (else ``cores``) as the CPU
  quota, ``memoryLimit`` (else ``memory``) as the memory limit, the GPU count — compute/base.py ``Limits``, which
  the local executor enforces under the server's own limits, never above them (docs/compute.md).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelharbor.compute.base import Limits
from modelharbor.core.clock import aware, now
from modelharbor.core.projects import is_org_admin, project_row
from modelharbor.db.engine import Database
from modelharbor.db.tables_compute import HardwareTierRow
from modelharbor.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from modelharbor.domain.principal import Action, Principal, require

UNITS = {"MB": 10**6, "MiB": 2**20, "GB": 10**9, "GiB": 2**30}
MAX_CORES = 1024.0
MAX_MEMORY = 2**50  # 1 PiB
MAX_GPUS = 64
MAX_TIERS = 1000
_TIER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
DEFAULT_TIER_ID = "small"


@dataclass(frozen=True)
class HardwareTier:
    id: str
    name: str
    cores: float
    memory: int  # bytes
    cores_limit: float | None = None
    memory_limit: int | None = None  # bytes
    memory_units: str = "GiB"  # the unit sizes are shown in
    gpu_key: str | None = None
    gpus: int = 0
    cents_per_minute: float = 0.0
    is_default: bool = False
    is_visible: bool = True
    is_global: bool = True
    is_archived: bool = False
    node_pool: str = "default"
    max_executions: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def limits(self) -> Limits:
        """What a workload on this tier may use (compute/base.py)."""
        return Limits(
            memory=self.memory_limit or self.memory, cpus=self.cores_limit or self.cores, gpus=self.gpus or None
        )


@dataclass(frozen=True)
class TierChanges:
    """A create or an update: None leaves a field as it is (an update) or takes its default (a create). Sizes are
    cores and bytes (an edge converts its vendor's units: Domino's ``InformationV1``); ``memory_units`` is the unit
    the sizes are shown in; ``extra`` are the vendor's fields kept as sent (JSON), merged into the tier's."""

    name: str | None = None
    cores: float | None = None
    memory: int | None = None  # bytes
    cores_limit: float | None = None
    memory_limit: int | None = None  # bytes
    memory_units: str | None = None
    gpu_key: str | None = None
    gpus: int | None = None
    cents_per_minute: float | None = None
    is_default: bool | None = None
    is_visible: bool | None = None
    is_global: bool | None = None
    node_pool: str | None = None
    max_executions: int | None = None
    extra: Mapping[str, Any] | None = None


def _number(value: Any, what: str, *, low: float, high: float, integer: bool = False) -> Any:
    ok = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok or not math.isfinite(value) or not low <= value <= high:
        kind = "an integer" if integer else "a number"
        raise InvalidInput(f"'{what}' must be {kind} from {low:g} to {high:g}, not {value!r}")
    return value


def _text(value: Any, what: str, limit: int = 256) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit or not value.isprintable():
        raise InvalidInput(f"'{what}' must be 1 to {limit} printable characters")
    return value


def _flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"'{what}' must be true or false")
    return value


def _checked(tier: HardwareTier) -> HardwareTier:
    """The tier's fields, each checked (after the changes were applied, so limits compare with requests)."""
    _text(tier.name, "name")
    _number(tier.cores, "cores", low=0.01, high=MAX_CORES)
    if tier.cores_limit is not None:
        _number(tier.cores_limit, "coresLimit", low=0.01, high=MAX_CORES)
        if tier.cores_limit < tier.cores:
            raise InvalidInput(f"'coresLimit' ({tier.cores_limit:g}) must be at least 'cores' ({tier.cores:g})")
    _number(tier.memory, "memory", low=2**20, high=MAX_MEMORY, integer=True)
    if tier.memory_limit is not None:
        _number(tier.memory_limit, "memoryLimit", low=2**20, high=MAX_MEMORY, integer=True)
        if tier.memory_limit < tier.memory:
            raise InvalidInput("'memoryLimit' must be at least 'memory'")
    if tier.memory_units not in UNITS:
        raise InvalidInput(f"memory units must be one of {', '.join(UNITS)}")
    _number(tier.gpus, "numberOfGpus", low=0, high=MAX_GPUS, integer=True)
    if tier.gpu_key is not None:
        _text(tier.gpu_key, "gpuKey", 100)
    _number(tier.cents_per_minute, "centsPerMinute", low=0, high=1e9)
    for what, value in (("isDefault", tier.is_default), ("isVisible", tier.is_visible), ("isGlobal", tier.is_global)):
        _flag(value, what)
    _text(tier.node_pool, "nodePool")
    if tier.max_executions is not None:
        _number(tier.max_executions, "maxSimultaneousExecutions", low=0, high=10**6, integer=True)
    if len(json.dumps(tier.extra)) > 64 * 1024:
        raise InvalidInput("the tier's other fields take more than 64 KiB")
    return tier


def _entity(row: HardwareTierRow) -> HardwareTier:
    return HardwareTier(
        id=row.tier_id,
        name=row.name,
        cores=row.cores,
        memory=row.memory,
        cores_limit=row.cores_limit,
        memory_limit=row.memory_limit,
        memory_units=row.memory_units,
        gpu_key=row.gpu_key,
        gpus=row.gpus,
        cents_per_minute=row.cents_per_minute,
        is_default=row.is_default,
        is_visible=row.is_visible,
        is_global=row.is_global,
        is_archived=row.is_archived,
        node_pool=row.node_pool,
        max_executions=row.max_executions,
        extra=json.loads(row.extra or "{}"),
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
    )


def _store(row: HardwareTierRow, tier: HardwareTier) -> None:
    row.name, row.cores, row.cores_limit = tier.name, float(tier.cores), tier.cores_limit
    row.memory, row.memory_limit, row.memory_units = tier.memory, tier.memory_limit, tier.memory_units
    row.gpu_key, row.gpus, row.cents_per_minute = tier.gpu_key, tier.gpus, float(tier.cents_per_minute)
    row.is_default, row.is_visible, row.is_global = tier.is_default, tier.is_visible, tier.is_global
    row.node_pool, row.max_executions = tier.node_pool, tier.max_executions
    row.extra = json.dumps(tier.extra, sort_keys=True)
    row.updated_at = now()


def _match(tiers: list[HardwareTier], ref: str) -> HardwareTier | None:
    """The tier ``ref`` names: its id, else its name in any case."""
    for tier in tiers:
        if tier.id == ref:
            return tier
    folded = ref.casefold()
    return next((t for t in tiers if t.name.casefold() == folded), None)


def _default_of(tiers: list[HardwareTier]) -> HardwareTier:
    return next((t for t in tiers if t.is_default and not t.is_archived), tiers[0])


SEED = HardwareTier(id=DEFAULT_TIER_ID, name="Small", cores=1.0, memory=4 * 2**30, is_default=True)


class HardwareTierService:
    def __init__(self, db: Database, seed: HardwareTier = SEED):
        self.db = db
        self.seed = seed

    # --- reads ---------------------------------------------------------------------------------------
    def list_tiers(
        self, principal: Principal, *, include_archived: bool = False, offset: int = 0, limit: int | None = None
    ) -> tuple[list[HardwareTier], int]:
        """The organisation's tiers (admins: all of them; others: the visible ones), default first, then by name;
        and how many there are."""
        require(principal, Action.SERVING_READ, principal.org_id, what="hardware tier")
        self._ensure_seeded(principal.org_id)
        with self.db.uow(readonly=True) as s:
            q = select(HardwareTierRow).where(HardwareTierRow.org_id == principal.org_id)
            if not include_archived:
                q = q.where(HardwareTierRow.is_archived.is_(False))
            if not is_org_admin(principal):
                q = q.where(HardwareTierRow.is_visible.is_(True))
            total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
            q = q.order_by(HardwareTierRow.is_default.desc(), HardwareTierRow.name, HardwareTierRow.tier_id)
            rows = s.scalars(q.offset(offset).limit(limit))
            return [_entity(r) for r in rows], total

    def get_tier(self, principal: Principal, tier_id: str) -> HardwareTier:
        require(principal, Action.SERVING_READ, principal.org_id, what="hardware tier")
        self._ensure_seeded(principal.org_id)
        with self.db.uow(readonly=True) as s:
            return _entity(self._row(s, principal, tier_id))

    def default_tier(self, principal: Principal) -> HardwareTier:
        tiers, _ = self.list_tiers(principal)
        for tier in tiers:
            if tier.is_default:
                return tier
        raise NotFound("the organisation has no default hardware tier")

    def limits(self, principal: Principal, tier_id: str | None = None) -> Limits:
        """The resource limits of a workload on ``tier_id`` (None: the default tier); archived tiers are refused."""
        tier = self.default_tier(principal) if tier_id is None else self.get_tier(principal, tier_id)
        if tier.is_archived:
            raise InvalidInput(f"hardware tier {tier.id!r} is archived: pick another one")
        return tier.limits

    def for_project(self, principal: Principal, project_id: str) -> list[HardwareTier]:
        """The tiers a project's workloads may run on: the organisation's visible, unarchived tiers (404 for a
        project the caller cannot see)."""
        require(principal, Action.REGISTRY_READ, principal.org_id, what="project")
        with self.db.uow(readonly=True) as s:
            project_row(s, principal, project_id)
        tiers, _ = self.list_tiers(principal)
        return [t for t in tiers if t.is_visible]

    # --- workloads (the serving core) ---------------------------------------------------------------------
    def workload_tier(self, s: Session, principal: Principal, ref: str | None, *, field: str) -> HardwareTier:
        """The tier a workload is given when its owner names ``ref`` (a tier's id, or its name in any case; None:
        the default tier), in the caller's session: a tier the caller cannot see is refused naming ``field`` and
        listing the tiers they may pick, an archived one too."""
        tiers = self._org_tiers(s, principal.org_id)
        if ref is None:
            return _default_of(tiers)
        tier = _match(tiers, ref)
        if tier is None or (not tier.is_visible and not is_org_admin(principal)):
            choices = self.selectable(s, principal)
            listed = ", ".join(f"{t.id!r} ({t.name})" for t in choices) or "none"
            raise InvalidInput(
                f"'{field}': no hardware tier {ref!r} in this organisation; the tiers are: {listed}", field=field
            )
        if tier.is_archived:
            raise InvalidInput(f"'{field}': hardware tier {tier.id!r} is archived: pick another one", field=field)
        return tier

    def selectable(self, s: Session, principal: Principal) -> list[HardwareTier]:
        """The tiers the caller may give a workload, default first: unarchived, visible (admins: hidden too)."""
        admin = is_org_admin(principal)
        return [t for t in self._org_tiers(s, principal.org_id) if not t.is_archived and (t.is_visible or admin)]

    def workload_limits(self, s: Session, org_id: str, ref: str | None) -> Limits:
        """What a running workload that names ``ref`` may use (compute/base.py): its tier's limits (an archived
        tier's too: it was chosen while it was not), else the default tier's."""
        tiers = self._org_tiers(s, org_id)
        tier = _match(tiers, ref) if ref is not None else None
        return (tier or _default_of(tiers)).limits

    def _org_tiers(self, s: Session, org_id: str) -> list[HardwareTier]:
        """The organisation's tiers, default first; the seed (not stored here) when it has none yet."""
        rows = s.scalars(
            select(HardwareTierRow)
            .where(HardwareTierRow.org_id == org_id)
            .order_by(HardwareTierRow.is_default.desc(), HardwareTierRow.name, HardwareTierRow.tier_id)
        )
        return [_entity(r) for r in rows] or [self.seed]

    # --- writes (admins) -----------------------------------------------------------------------------
    def create_tier(self, principal: Principal, tier_id: str, changes: TierChanges) -> HardwareTier:
        self._require_admin(principal)
        if not _TIER_ID.fullmatch(tier_id):
            raise InvalidInput(
                f"Invalid hardware tier id {tier_id!r}: 1 to 100 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        if changes.name is None or changes.cores is None or changes.memory is None:
            raise InvalidInput("'name', 'cores' and 'memory' are required to create a hardware tier")
        tier = _checked(self._apply(HardwareTier(id=tier_id, name="", cores=1.0, memory=2**30), changes))
        self._ensure_seeded(principal.org_id)
        try:
            with self.db.uow() as s:
                taken = s.scalar(
                    select(func.count()).where(
                        HardwareTierRow.org_id == principal.org_id,
                        func.lower(HardwareTierRow.tier_id) == tier_id.lower(),
                    )
                )
                if taken:
                    raise Conflict(f"Hardware tier with id {tier_id!r} already exists.")
                count = s.scalar(select(func.count()).where(HardwareTierRow.org_id == principal.org_id)) or 0
                if count >= MAX_TIERS:
                    raise InvalidInput(f"an organisation may have at most {MAX_TIERS} hardware tiers")
                row = HardwareTierRow(org_id=principal.org_id, tier_id=tier_id, created_at=now())
                _store(row, tier)
                if tier.is_default:
                    self._clear_default(s, principal.org_id)
                s.add(row)
                s.flush()
                return _entity(row)
        except IntegrityError:
            raise Conflict(f"Hardware tier with id {tier_id!r} already exists.") from None

    def update_tier(self, principal: Principal, tier_id: str, changes: TierChanges) -> HardwareTier:
        self._require_admin(principal)
        self._ensure_seeded(principal.org_id)
        with self.db.uow() as s:
            row = self._row(s, principal, tier_id, lock=True)
            if row.is_archived:
                raise InvalidInput(f"hardware tier {row.tier_id!r} is archived and cannot be changed")
            before = _entity(row)
            tier = _checked(self._apply(before, changes))
            if before.is_default and not tier.is_default:
                raise InvalidInput(
                    f"hardware tier {row.tier_id!r} is the default: make another tier the default instead"
                )
            if tier.is_default and not before.is_default:
                self._clear_default(s, principal.org_id)
            _store(row, tier)
            s.flush()
            return _entity(row)

    def archive_tier(self, principal: Principal, tier_id: str) -> HardwareTier:
        self._require_admin(principal)
        self._ensure_seeded(principal.org_id)
        with self.db.uow() as s:
            row = self._row(s, principal, tier_id, lock=True)
            if row.is_default and not row.is_archived:
                raise InvalidInput(
                    f"hardware tier {row.tier_id!r} is the default and cannot be archived: make another tier the "
                    "default first"
                )
            row.is_archived = True
            row.updated_at = now()
            s.flush()
            return _entity(row)

    # --- helpers -------------------------------------------------------------------------------------
    @staticmethod
    def _require_admin(principal: Principal) -> None:
        require(principal, Action.SERVING_READ, principal.org_id, what="hardware tier")
        if not is_org_admin(principal):
            raise Forbidden("only an admin of the organisation may manage hardware tiers (ManageHardwareTiers)")

    @staticmethod
    def _apply(tier: HardwareTier, c: TierChanges) -> HardwareTier:
        values = {k: v for k, v in vars(c).items() if v is not None}
        if c.extra is not None:  # kept fields: the given ones replace theirs, the others stay
            values["extra"] = {**tier.extra, **c.extra}
        return replace(tier, **values)

    @staticmethod
    def _clear_default(s: Session, org_id: str) -> None:
        s.execute(
            update(HardwareTierRow)
            .where(HardwareTierRow.org_id == org_id, HardwareTierRow.is_default.is_(True))
            .values(is_default=False)
        )

    @staticmethod
    def _row(s: Session, principal: Principal, tier_id: str, *, lock: bool = False) -> HardwareTierRow:
        if not _TIER_ID.fullmatch(tier_id):
            raise NotFound(f"Hardware tier {tier_id!r} not found")
        q = select(HardwareTierRow).where(
            HardwareTierRow.org_id == principal.org_id, HardwareTierRow.tier_id == tier_id
        )
        row = s.scalar(q.with_for_update() if lock else q)
        if row is None or (not row.is_visible and not is_org_admin(principal)):
            raise NotFound(f"Hardware tier {tier_id!r} not found")
        return row

    def _ensure_seeded(self, org_id: str) -> None:
        """The organisation's first tier, made on first use (see the module docstring)."""
        with self.db.uow(readonly=True) as s:
            if s.scalar(select(HardwareTierRow.pk).where(HardwareTierRow.org_id == org_id).limit(1)) is not None:
                return
        try:
            with self.db.uow() as s:
                row = HardwareTierRow(org_id=org_id, tier_id=self.seed.id, created_at=now())
                _store(row, self.seed)
                row.is_archived = False
                s.add(row)
        except IntegrityError:
            pass  # another request seeded it first
