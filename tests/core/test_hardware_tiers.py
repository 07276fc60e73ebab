"""Hardware tiers in the core (SQLite and PostgreSQL): the seeded default, one default at a time, admin-only writes,
per-organisation tiers, and the limits a workload on a tier gets."""

from __future__ import annotations

import threading
import uuid

import pytest

from modelharbor.compute.base import Limits
from modelharbor.core.hardware_tiers import TierChanges
from modelharbor.db.tables import MembershipRow
from modelharbor.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from modelharbor.domain.principal import Role

GIB = 2**30


def member(services, admin, role=Role.MEMBER):
    user = services.identity.create_user(admin, f"u-{uuid.uuid4().hex[:8]}", role=role)
    return services.identity.principal_by_ids(user.id, admin.org_id)


def test_seeded_once_even_when_asked_at_once(services, admin):
    tiers = services.hardware_tiers
    errors: list[BaseException] = []

    def first_use():
        try:
            tiers.list_tiers(admin)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=first_use) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    listed, total = tiers.list_tiers(admin)
    assert total == 1 and listed[0].id == "small" and listed[0].is_default
    assert tiers.limits(admin) == Limits(memory=4 * GIB, cpus=1.0)


def test_limits_default_and_archive_rules(services, admin):
    tiers = services.hardware_tiers
    big = tiers.create_tier(
        admin, "big", TierChanges(name="Big", cores=2, cores_limit=3.5, memory=8 * GIB, memory_limit=12 * GIB)
    )
    assert big.limits == Limits(memory=12 * GIB, cpus=3.5)
    assert tiers.limits(admin, "big") == big.limits
    gpu = tiers.create_tier(
        admin, "gpu", TierChanges(name="GPU", cores=1, memory=GIB, gpus=2, gpu_key="nvidia.com/gpu")
    )
    assert gpu.limits.gpus == 2
    with pytest.raises(Conflict):
        tiers.create_tier(admin, "BIG", TierChanges(name="x", cores=1, memory=GIB))
    tiers.update_tier(admin, "big", TierChanges(is_default=True))
    assert [t.id for t in tiers.list_tiers(admin)[0] if t.is_default] == ["big"]
    assert tiers.default_tier(admin).id == "big"
    with pytest.raises(InvalidInput, match="default"):
        tiers.archive_tier(admin, "big")
    with pytest.raises(InvalidInput, match="default"):
        tiers.update_tier(admin, "big", TierChanges(is_default=False))
    tiers.archive_tier(admin, "small")
    with pytest.raises(InvalidInput, match="archived"):
        tiers.limits(admin, "small")
    with pytest.raises(InvalidInput, match="coresLimit"):
        tiers.update_tier(admin, "big", TierChanges(cores=4))  # above its limit of 3.5
    assert tiers.get_tier(admin, "big").cores == 2  # nothing changed


def test_roles_and_organisations(services, admin):
    tiers = services.hardware_tiers
    viewer = member(services, admin, Role.VIEWER)
    assert [t.id for t in tiers.list_tiers(viewer)[0]] == ["small"]
    with pytest.raises(Forbidden):
        tiers.create_tier(viewer, "x", TierChanges(name="x", cores=1, memory=GIB))
    with pytest.raises(Forbidden):
        tiers.archive_tier(member(services, admin), "small")
    tiers.create_tier(admin, "secret", TierChanges(name="S", cores=1, memory=GIB, is_visible=False))
    with pytest.raises(NotFound):
        tiers.get_tier(viewer, "secret")
    other = services.identity.create_org(admin, "other")
    user = services.identity.create_user(admin, "boss", role=Role.OWNER)
    with services.db.uow() as s:
        s.add(MembershipRow(org_id=other.id, user_id=user.id, role="admin"))
    boss = services.identity.principal_by_ids(user.id, other.id)
    with pytest.raises(NotFound):
        tiers.get_tier(boss, "secret")
    assert [t.id for t in tiers.list_tiers(boss)[0]] == ["small"]  # its own, seeded
    tiers.create_tier(boss, "secret", TierChanges(name="Theirs", cores=1, memory=GIB))  # ids are per organisation
    assert tiers.get_tier(admin, "secret").name == "S"


def test_limits_merge():
    tier = Limits(memory=GIB, cpus=0.5)
    assert tier.within(Limits(memory=8 * GIB, processes=64, file_size=10)) == Limits(
        memory=GIB, cpus=0.5, processes=64, file_size=10
    )
    # never above the server's ceiling
    assert Limits(memory=16 * GIB, cpus=8).within(Limits(memory=4 * GIB, cpus=2)) == Limits(memory=4 * GIB, cpus=2)
