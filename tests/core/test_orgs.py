"""Organisations (superusers only): create, list, read, rename, members, and moving a user between them."""

from __future__ import annotations

import asyncio

import pytest

from modelharbor.core import identity
from modelharbor.core.identity import IdentityService
from modelharbor.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from modelharbor.domain.principal import Role


async def _one(data: bytes):
    yield data


def test_superusers_create_list_read_and_rename_organisations(services, admin):
    ids = services.identity
    acme = ids.create_org(admin, "acme")
    assert [(o.name, o.members) for o in ids.list_orgs(admin)] == [("default", 1), ("acme", 1)]  # the creator owns it
    assert ids.get_org(admin, "acme").id == acme.id == ids.get_org(admin, acme.id).id  # by name or by id
    assert [(m.username, m.role) for m in ids.org_members(admin, acme.id)] == [("admin", Role.OWNER)]
    renamed = ids.rename_org(admin, acme.id, "acme corp")
    assert (renamed.id, renamed.name) == (acme.id, "acme corp") and ids.org_name(acme.id) == "acme corp"
    assert ids.rename_org(admin, "acme corp", "acme corp").name == "acme corp"  # the same name: nothing to do

    with pytest.raises(Conflict):
        ids.create_org(admin, "acme corp")
    ids.create_org(admin, "other")
    with pytest.raises(Conflict):
        ids.rename_org(admin, "other", "acme corp")
    for bad in ("", " padded", "tab\tname", "x" * 201, None):
        with pytest.raises(InvalidInput):
            ids.create_org(admin, bad)
    with pytest.raises(NotFound):
        ids.get_org(admin, "nowhere")
    with pytest.raises(NotFound):
        ids.rename_org(admin, "f" * 32, "x")


def test_the_default_organisation_keeps_its_name(services, admin):
    """The server ensures its configured admin in ``default`` (by name) at every start: renaming it would make a new,
    empty ``default`` appear at the next start."""
    services.identity.create_org(admin, "acme")
    with pytest.raises(Conflict) as refused:
        services.identity.rename_org(admin, "default", "renamed")
    assert refused.value.code == "ORG_NAME_RESERVED"
    with pytest.raises(Conflict):
        services.identity.rename_org(admin, "acme", "default")
    assert {o.name for o in services.identity.list_orgs(admin)} == {"default", "acme"}


def test_only_superusers_manage_organisations(services, admin):
    ids = services.identity
    ids.create_org(admin, "acme")
    ids.create_user(admin, "boss", role=Role.OWNER)  # the owner of an organisation is no superuser
    boss = ids.principal_for("boss")
    calls = [
        lambda: ids.list_orgs(boss),
        lambda: ids.create_org(boss, "mine"),
        lambda: ids.get_org(boss, "default"),
        lambda: ids.rename_org(boss, "default", "x"),
        lambda: ids.org_members(boss, "default"),
        lambda: ids.move_user(boss, "boss", "acme"),
    ]
    for call in calls:
        with pytest.raises(Forbidden):
            call()
    assert [o.name for o in ids.list_orgs(admin)] == ["default", "acme"]
    assert ids.principal_for("boss").org_id == boss.org_id


def test_moving_a_user_moves_their_membership_and_keys_not_their_objects(services, admin):
    ids = services.identity
    ids.create_user(admin, "ann", role=Role.ADMIN)
    ann = ids.principal_for("ann")
    key = ids.create_key(ann, "ann's laptop")
    record = asyncio.run(services.files.upload(ann, name="a.bin", data=_one(b"ann's bytes")))
    assert ids.authenticate_key(key.secret).org_id == ann.org_id  # remembered here now
    acme = ids.create_org(admin, "acme")

    moved = ids.move_user(admin, "ann", "acme")
    assert (moved.org_id, moved.role, moved.username) == (acme.id, Role.MEMBER, "ann")  # no role given: member
    now_ann = ids.authenticate_key(key.secret)  # at once in this process: the key acts in acme now
    assert (now_ann.org_id, now_ann.role) == (acme.id, Role.MEMBER)
    assert [k.id for k in ids.list_keys(now_ann)] == [key.id]
    assert [m.username for m in ids.org_members(admin, "default")] == ["admin"]
    assert [m.username for m in ids.org_members(admin, "acme")] == ["admin", "ann"]
    # the file stays with the organisation that owns it: its admins keep it, ann no longer reaches it
    assert services.files.get(admin, record.id).org_id == ann.org_id
    with pytest.raises(NotFound):
        services.files.get(now_ann, record.id)
    with pytest.raises(NotFound):
        ids.principal_for("ann", "default")
    with pytest.raises(Unauthenticated):
        ids.principal_by_ids(ann.user_id, ann.org_id)  # tokens naming the old organisation stop working

    # by id, with a role; moving into the only organisation they are in just sets the role
    again = ids.move_user(admin, ann.user_id, acme.id, role="Admin")
    assert again.role == Role.ADMIN and ids.authenticate_key(key.secret).role == Role.ADMIN
    back = ids.move_user(admin, "ann", "default", role="viewer")
    assert (back.org_id, back.role) == (ann.org_id, Role.VIEWER)
    assert ids.authenticate_key(key.secret).org_id == ann.org_id


def test_moving_a_user_of_several_organisations_names_the_one_they_leave(services, admin):
    ids = services.identity
    ids.create_org(admin, "a")
    ids.create_org(admin, "b")
    ids.create_org(admin, "c")
    ids.create_user(admin, "bob")
    ids.move_user(admin, "bob", "a")
    with services.db.uow() as s:  # bob is also a member of b (as a superuser's CLI may make him)
        from modelharbor.db.tables import MembershipRow

        s.add(
            MembershipRow(
                org_id=ids.get_org(admin, "b").id, user_id=ids.principal_for("bob", "a").user_id, role="admin"
            )
        )
    with pytest.raises(InvalidInput, match="several organisations"):
        ids.move_user(admin, "bob", "c")
    with pytest.raises(NotFound):
        ids.move_user(admin, "bob", "c", from_org="default")  # he is not in default any more
    moved = ids.move_user(admin, "bob", "c", from_org="a")
    assert moved.role == Role.MEMBER
    assert {o.name for o in ids.list_orgs(admin) if "bob" in [m.username for m in ids.org_members(admin, o.id)]} == {
        "b",
        "c",
    }
    kept = ids.move_user(admin, "bob", "b", from_org="c")  # already a member of b: keeps his role there
    assert kept.role == Role.ADMIN
    for user, org, kw in [("nobody", "a", {}), ("bob", "nowhere", {}), ("bob", "a", {"from_org": "nowhere"})]:
        with pytest.raises(NotFound):
            ids.move_user(admin, user, org, **kw)
    with pytest.raises(InvalidInput, match="role"):
        ids.move_user(admin, "bob", "a", role="emperor")


def test_another_process_sees_a_move_within_the_key_cache_time(services, admin, monkeypatch):
    ids = services.identity
    ids.create_user(admin, "cy")
    key = ids.create_key(ids.principal_for("cy"), "k")
    other = IdentityService(services.db)  # another replica on the same database
    before = other.authenticate_key(key.secret)
    acme = ids.create_org(admin, "acme")
    ids.move_user(admin, "cy", "acme")
    assert other.authenticate_key(key.secret) == before  # remembered there, for at most KEY_CACHE_SECONDS
    clock = [identity.time.monotonic() + identity.KEY_CACHE_SECONDS + 0.1]
    monkeypatch.setattr(identity.time, "monotonic", lambda: clock[0])
    assert other.authenticate_key(key.secret).org_id == acme.id
