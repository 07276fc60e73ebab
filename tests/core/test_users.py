"""User administration (core/users.py): who may list, create, read, set passwords of and delete whom, and what a
deletion leaves; against real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select, update

from modelharbor.core.identity import MIN_PASSWORD
from modelharbor.db.tables import ApiKeyRow, FileRow, MembershipRow, UploadSessionRow, UserRow
from modelharbor.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from modelharbor.domain.principal import Role
from tests.factories import in_same_org, member_of_new_org

PASSWORD = "correct horse battery"


async def agen(data: bytes):
    yield data


def join(services, username: str, org_id: str) -> None:
    """Make ``username`` a member of one more organisation (a move would take them out of theirs)."""
    with services.db.uow() as s:
        user_id = s.scalar(select(UserRow.id).where(UserRow.username == username))
        s.add(MembershipRow(org_id=org_id, user_id=user_id, role="member"))


@pytest.fixture
def users(services):
    return services.users


def test_admins_create_and_list_the_users_of_their_organisation(users, services, admin):
    boss = in_same_org(services, admin, "admin")
    made = users.add_user(boss, "alice", password=PASSWORD)
    assert (made.username, made.role, made.has_password, made.is_superuser) == ("alice", Role.MEMBER, True, False)
    assert made.org_id == admin.org_id
    keyless = users.add_user(boss, "bob", role="viewer")
    assert (keyless.role, keyless.has_password) == (Role.VIEWER, False)
    names = [u.username for u in users.list_users(boss)]
    assert names == sorted(names) and {"admin", "alice", "bob", boss.username} <= set(names)
    assert users.get_user(boss, "alice") == made == users.get_user(boss, made.id)
    assert services.identity.authenticate_password("alice", PASSWORD).user_id == made.id  # Argon2id, as always
    with services.db.uow(readonly=True) as s:
        assert s.scalar(select(UserRow.password_hash).where(UserRow.id == made.id)).startswith("$argon2id$")


def test_what_admins_may_not_do(users, services, admin):
    boss = in_same_org(services, admin, "admin")
    with pytest.raises(Forbidden):
        users.add_user(boss, "owner2", role="owner")  # above their own role
    for role in ("viewer", "member"):
        someone = in_same_org(services, admin, role)
        for call in (
            lambda p=someone: users.list_users(p),
            lambda p=someone: users.add_user(p, "x"),
            lambda p=someone: users.get_user(p, "admin"),
        ):
            with pytest.raises(Forbidden):
                call()
    owner = in_same_org(services, admin, "owner")
    with pytest.raises(Forbidden):
        users.set_password(boss, owner.username, PASSWORD)  # an owner outranks an admin
    with pytest.raises(Forbidden):
        users.delete_user(boss, owner.username)
    with pytest.raises(Forbidden):
        users.set_password(boss, "admin", PASSWORD)  # a superuser
    with pytest.raises(Forbidden):
        users.delete_user(owner, "admin")
    with pytest.raises(InvalidInput):
        users.add_user(boss, "weak", password="x" * (MIN_PASSWORD - 1))
    for bad in ("", " padded", "a\x00b", "0123456789abcdef0123456789abcdef", "x" * 201):
        with pytest.raises(InvalidInput):
            users.add_user(boss, bad)
    with pytest.raises(InvalidInput):
        users.add_user(boss, "r", role="emperor")
    users.add_user(boss, "taken")
    with pytest.raises(Conflict):
        users.add_user(boss, "taken")


def test_other_organisations_users_are_missing(users, services, admin):
    other = member_of_new_org(services, role="owner")
    stranger = users.add_user(other, "stranger")
    boss = in_same_org(services, admin, "admin")
    for call in (
        lambda: users.get_user(boss, "stranger"),
        lambda: users.get_user(boss, stranger.id),
        lambda: users.set_password(boss, "stranger", PASSWORD),
        lambda: users.delete_user(boss, "stranger"),
        lambda: users.list_users(boss, org=other.org_id),
        lambda: users.add_user(boss, "intruder", org=other.org_id),
    ):
        with pytest.raises(NotFound):
            call()
    assert "stranger" not in [u.username for u in users.list_users(boss)]
    # superusers see everyone, and name the organisation
    assert users.get_user(admin, "stranger").org_id == other.org_id
    assert [u.username for u in users.list_users(admin, org=other.org_id)] == sorted([other.username, "stranger"])
    assert {"stranger", "admin"} <= {u.username for u in users.list_users(admin)}
    assert users.add_user(admin, "placed", org=other.org_id).org_id == other.org_id


def test_passwords_of_yourself_and_of_others(users, services, admin):
    boss = in_same_org(services, admin, "admin")
    users.add_user(boss, "carl")
    carl = services.identity.principal_for("carl")
    assert users.set_password(carl, "carl", PASSWORD).has_password  # none yet: no current one needed
    with pytest.raises(Forbidden) as wrong:
        users.set_password(carl, "carl", "another long password")
    assert wrong.value.code == "WRONG_PASSWORD"
    with pytest.raises(Forbidden):
        users.set_password(carl, "carl", "another long password", current_password="not it at all")
    users.set_password(carl, "carl", "another long password", current_password=PASSWORD)
    with pytest.raises(Unauthenticated):
        services.identity.authenticate_password("carl", PASSWORD)
    with pytest.raises(Forbidden):
        users.set_password(carl, boss.username, PASSWORD)  # a member sets only their own
    users.set_password(boss, "carl", "reset by the admin!")  # an admin needs no current password
    assert services.identity.authenticate_password("carl", "reset by the admin!").user_id == carl.user_id


def test_an_admin_does_not_set_the_password_of_a_member_of_another_organisation(users, services, admin):
    """A password is the user's everywhere: setting it would let this admin sign in to the other organisation."""
    boss = in_same_org(services, admin, "admin")
    users.add_user(boss, "dual")
    join(services, "dual", services.identity.create_org(admin, "second").id)
    with pytest.raises(Forbidden):
        users.set_password(boss, "dual", PASSWORD)
    users.set_password(admin, "dual", PASSWORD)  # a superuser may


def test_deleting_removes_the_membership_revokes_keys_and_keeps_what_they_made(users, services, admin):
    boss = in_same_org(services, admin, "admin")
    users.add_user(boss, "dora", password=PASSWORD)
    dora = services.identity.principal_for("dora")
    key = services.identity.create_key(dora, "dora's")
    dora = services.identity.authenticate_key(key.secret)
    record = asyncio.run(services.files.upload(dora, name="d.bin", data=agen(b"dora's bytes")))
    session = services.uploads.start(dora, name="half.bin", total_chunks=2)
    with pytest.raises(Conflict):
        users.delete_user(boss, boss.username)

    users.delete_user(boss, "dora")
    with pytest.raises(Unauthenticated):
        services.identity.authenticate_key(key.secret)
    with pytest.raises(Unauthenticated):
        services.identity.authenticate_password("dora", PASSWORD)
    with pytest.raises(NotFound):
        users.get_user(admin, "dora")
    with services.db.uow(readonly=True) as s:
        assert s.scalar(select(UserRow).where(UserRow.username == "dora")) is None  # in no organisation: gone
        assert s.scalar(select(ApiKeyRow).where(ApiKeyRow.id == key.id)) is None
        assert s.get(FileRow, record.id).owner_id == boss.user_id  # the file stays, now the deleting admin's
        assert s.get(UploadSessionRow, session.id).owner_id == boss.user_id
    assert services.files.get(boss, record.id).size == len(b"dora's bytes")
    assert asyncio.run(services.uploads.sweep()) == 1  # their open session expired with them
    assert users.add_user(boss, "dora").username == "dora"  # the name is free again


def test_deleting_a_member_of_two_organisations_removes_them_from_one(users, services, admin):
    boss = in_same_org(services, admin, "admin")
    users.add_user(boss, "twice")
    elsewhere = services.identity.create_org(admin, "elsewhere").id
    join(services, "twice", elsewhere)
    there = services.identity.principal_for("twice", "elsewhere")
    key_there = services.identity.create_key(there, "there")
    here = services.identity.create_key(boss, "here", username="twice")
    users.delete_user(boss, "twice")
    with pytest.raises(Unauthenticated):
        services.identity.authenticate_key(here.secret)
    assert services.identity.authenticate_key(key_there.secret).org_id == elsewhere  # the other organisation's
    assert users.get_user(admin, "twice").org_id == elsewhere
    users.delete_user(admin, "twice")  # a superuser removes them everywhere
    with pytest.raises(NotFound):
        users.get_user(admin, "twice")


def test_keys_of_a_user_and_revoking_by_prefix(services, admin):
    identity = services.identity
    boss = in_same_org(services, admin, "admin")
    services.users.add_user(boss, "kim")
    kim = identity.principal_for("kim")
    mine = identity.create_key(kim, "kim's")
    assert [k.id for k in identity.list_keys(boss, username="kim")] == [mine.id]
    with pytest.raises(Forbidden):
        identity.list_keys(kim, username=boss.username)
    with pytest.raises(NotFound):
        identity.list_keys(boss, username="nobody")
    assert identity.revoke_key(kim, mine.id[:6]).revoked_at is not None
    with pytest.raises(InvalidInput) as short:
        identity.revoke_key(kim, mine.id[:5])
    assert short.value.code == "KEY_PREFIX_TOO_SHORT"
    with pytest.raises(NotFound):
        identity.revoke_key(kim, "ffffffffff")
    with pytest.raises(NotFound):
        identity.revoke_key(kim, "%%%%%%")
    # several keys under one prefix: ambiguous, and the ids are listed
    first, second = identity.create_key(boss, "one"), identity.create_key(boss, "two")
    with services.db.uow() as s:
        s.execute(update(ApiKeyRow).where(ApiKeyRow.id == first.id).values(id="abcdef0000000001"))
        s.execute(update(ApiKeyRow).where(ApiKeyRow.id == second.id).values(id="abcdef0000000002"))
    with pytest.raises(Conflict) as ambiguous:
        identity.revoke_key(boss, "abcdef")
    assert ambiguous.value.code == "AMBIGUOUS_KEY_PREFIX"
    assert ambiguous.value.details["key_ids"] == ["abcdef0000000001", "abcdef0000000002"]
    assert identity.revoke_key(boss, "abcdef0000000002").revoked_at is not None
    assert identity.revoke_key(boss, "abcdef").id == "abcdef0000000001"  # the one live key under the prefix
    # a member never reaches another's key by prefix: as if it did not exist
    with pytest.raises(NotFound):
        identity.revoke_key(kim, "abcdef")
