"""Identity: admin bootstrap, API keys (hashed, shown once, revocable, expiring), passwords, roles."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from modelharbor.app import bootstrap
from modelharbor.core import identity
from modelharbor.core.clock import now
from modelharbor.core.identity import IdentityService, hash_key
from modelharbor.db.tables import ApiKeyRow, UserRow
from modelharbor.domain.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from modelharbor.domain.principal import Role


def test_keys_are_stored_hashed_and_shown_once(services, admin):
    key = services.identity.create_key(admin, "ci")
    assert key.secret.startswith("mh_")
    with services.db.uow(readonly=True) as s:
        row = s.get(ApiKeyRow, key.id)
        assert row.key_hash == hash_key(key.secret) and key.secret not in (row.key_hash, row.prefix)
    assert all(k.secret is None for k in services.identity.list_keys(admin))
    assert services.identity.authenticate_key(key.secret).user_id == admin.user_id


def test_revoked_and_expired_keys_refused(services, admin):
    key = services.identity.create_key(admin, "tmp", expires_in_days=1)
    services.identity.revoke_key(admin, key.id)
    with pytest.raises(Unauthenticated, match="revoked"):
        services.identity.authenticate_key(key.secret)
    key2 = services.identity.create_key(admin, "tmp2", expires_in_days=1)
    with services.db.uow() as s:
        s.execute(update(ApiKeyRow).where(ApiKeyRow.id == key2.id).values(expires_at=now() - timedelta(seconds=1)))
    with pytest.raises(Unauthenticated, match="expired"):
        services.identity.authenticate_key(key2.secret)
    for bad in ["", "nope", "x" * 600]:
        with pytest.raises(Unauthenticated):
            services.identity.authenticate_key(bad)


def test_passwords_use_argon2(services, admin):
    services.identity.create_user(admin, "alice", password="s3cret-pass")
    with services.db.uow(readonly=True) as s:
        assert s.scalar(select(UserRow.password_hash).where(UserRow.username == "alice")).startswith("$argon2id$")
    assert services.identity.authenticate_password("alice", "s3cret-pass").username == "alice"
    with pytest.raises(Unauthenticated):
        services.identity.authenticate_password("alice", "wrong")


def test_basic_credentials_take_a_password_or_a_key_as_the_password(services, admin):
    services.identity.create_user(admin, "carol", password="carol-pass-1")
    key = services.identity.create_key(admin, "basic")
    assert services.identity.authenticate_basic("carol", "carol-pass-1").username == "carol"
    assert services.identity.authenticate_basic("anyone", key.secret).user_id == admin.user_id
    for username, password in (("carol", "wrong"), ("carol", ""), ("nobody", "carol-pass-1")):
        with pytest.raises(Unauthenticated):
            services.identity.authenticate_basic(username, password)


def test_members_manage_only_their_own_keys(services, admin):
    services.identity.create_user(admin, "bob", role=Role.MEMBER)
    bob = services.identity.principal_for("bob")
    admin_key = services.identity.create_key(admin, "admin-only")
    with pytest.raises(Forbidden):
        services.identity.revoke_key(bob, admin_key.id)
    with pytest.raises(Forbidden):
        services.identity.list_keys(bob, all_users=True)
    with pytest.raises(Forbidden):
        services.identity.create_key(bob, "for admin", username="admin")
    own = services.identity.create_key(bob, "mine")
    assert [k.id for k in services.identity.list_keys(bob)] == [own.id]
    assert services.identity.create_key(admin, "for bob", username="bob").user_id == bob.user_id
    with pytest.raises(Forbidden):
        services.identity.create_user(bob, "mallory")
    with pytest.raises(NotFound):
        services.identity.create_key(admin, "x", username="nobody")


def test_bootstrap_generates_admin_once(tmp_path, sqlite_url):
    from modelharbor.services import build_services
    from modelharbor.settings import Settings

    settings = Settings(_env_file=None, data_dir=tmp_path / "d", database_url=sqlite_url, blob_url=str(tmp_path / "b"))
    svc = build_services(settings)
    created = bootstrap(svc)
    assert created.user.username == "admin" and created.key.startswith("mh_") and len(created.password) >= 20
    saved = tmp_path / "d" / "initial-admin.env"
    assert oct(saved.stat().st_mode & 0o777) == "0o600"
    values = dict(line.split("=", 1) for line in saved.read_text().splitlines() if not line.startswith("#"))
    assert values == {
        "MODELHARBOR_USERNAME": "admin",
        "MODELHARBOR_PASSWORD": created.password,
        "MODELHARBOR_API_KEY": created.key,
    }
    assert svc.identity.authenticate_key(created.key).is_superuser
    assert svc.identity.authenticate_password("admin", created.password).is_superuser  # UFDL's obtain, Basic auth
    assert svc.identity.authenticate_basic("admin", created.password).is_superuser
    with svc.db.uow(readonly=True) as s:  # stored as every user's password is: Argon2id, never the secret
        stored = s.scalar(select(UserRow.password_hash).where(UserRow.username == "admin"))
    assert stored.startswith("$argon2id$") and created.password not in stored
    assert bootstrap(svc) is None  # second start: nothing new
    assert saved.read_text().count(created.password) == 1  # the file stays as the first start wrote it


def test_a_configured_admin_without_credentials_gets_both_one_with_a_password_gets_a_key(tmp_path, sqlite_url):
    from modelharbor.services import build_services
    from modelharbor.settings import Settings

    def start(**admin):
        settings = Settings(
            _env_file=None, data_dir=tmp_path / "d", database_url=sqlite_url, blob_url=str(tmp_path / "b"), **admin
        )
        return build_services(settings), bootstrap(build_services(settings))

    svc, created = start(admin_user="ops")
    assert created.user.username == "ops" and created.key and created.password
    assert svc.identity.authenticate_password("ops", created.password).username == "ops"
    svc, created = start(admin_user="root", admin_password="pw-123456")
    assert created.key and created.password is None  # the configured password stays the password
    assert svc.identity.authenticate_password("root", "pw-123456").username == "root"
    assert "MODELHARBOR_PASSWORD" not in (tmp_path / "d" / "initial-admin.env").read_text()
    assert start(admin_user="root")[1] is None  # has a key and a password: nothing generated


def test_reset_password_is_checked_and_replaces_the_old_one(services, admin):
    services.identity.create_user(admin, "dora", password="first-pass-1")
    assert services.identity.reset_password("dora", "second-pass-22").username == "dora"
    assert services.identity.authenticate_password("dora", "second-pass-22").username == "dora"
    with pytest.raises(Unauthenticated):
        services.identity.authenticate_password("dora", "first-pass-1")
    with pytest.raises(InvalidInput, match="12 to 1024 characters"):
        services.identity.reset_password("dora", "short")
    with pytest.raises(NotFound, match="nobody"):
        services.identity.reset_password("nobody", "long-enough-1")


def test_bootstrap_from_settings_is_idempotent(tmp_path, sqlite_url):
    from modelharbor.services import build_services
    from modelharbor.settings import Settings

    settings = Settings(
        _env_file=None,
        data_dir=tmp_path / "d",
        database_url=sqlite_url,
        blob_url=str(tmp_path / "b"),
        admin_user="root",
        admin_password="pw-123456",
        admin_key="kg-vendor-style-key",
    )
    svc = build_services(settings)
    assert bootstrap(svc) is None and bootstrap(svc) is None
    p = svc.identity.authenticate_key("kg-vendor-style-key")
    assert p.username == "root" and p.role == Role.OWNER and p.is_superuser
    assert svc.identity.authenticate_password("root", "pw-123456").username == "root"
    assert len(svc.identity.list_keys(p)) == 1


def test_last_used_is_recorded(services, admin):
    key = services.identity.create_key(admin, "used")
    assert services.identity.list_keys(admin)[-1].last_used_at is None
    services.identity.authenticate_key(key.secret)
    used = {k.id: k.last_used_at for k in services.identity.list_keys(admin)}[key.id]
    assert used is not None and (now() - used).total_seconds() < 60


def test_verified_keys_are_remembered_briefly(services, admin, monkeypatch):
    key = services.identity.create_key(admin, "busy")
    p = services.identity.authenticate_key(key.secret)
    assert services.identity.cached_key(key.secret) == p
    reads = []
    monkeypatch.setattr(services.identity.db, "uow", lambda **kw: reads.append(kw) or pytest.fail("read the row"))
    assert services.identity.authenticate_key(key.secret) == p  # no database read
    monkeypatch.undo()
    clock = [identity.time.monotonic()]
    monkeypatch.setattr(identity.time, "monotonic", lambda: clock[0])
    clock[0] += identity.KEY_CACHE_SECONDS + 0.1
    assert services.identity.cached_key(key.secret) is None  # stale: the next request reads the row again
    assert services.identity.authenticate_key(key.secret) == p
    assert services.identity.cached_key("mh_unknown") is None and services.identity.cached_key("") is None


def test_revocation_takes_effect_at_once_in_this_process(services, admin):
    key = services.identity.create_key(admin, "soon-revoked")
    services.identity.authenticate_key(key.secret)
    services.identity.revoke_key(admin, key.id)
    assert services.identity.cached_key(key.secret) is None
    with pytest.raises(Unauthenticated, match="revoked"):
        services.identity.authenticate_key(key.secret)


def test_revocation_by_another_process_takes_effect_within_the_cache_time(services, admin, monkeypatch):
    key = services.identity.create_key(admin, "replicas")
    other = IdentityService(services.db)  # another replica (or the CLI) on the same database
    services.identity.authenticate_key(key.secret)
    other.revoke_key(admin, key.id)
    services.identity.authenticate_key(key.secret)  # still remembered here, for at most KEY_CACHE_SECONDS
    clock = [identity.time.monotonic() + identity.KEY_CACHE_SECONDS + 0.1]
    monkeypatch.setattr(identity.time, "monotonic", lambda: clock[0])
    with pytest.raises(Unauthenticated, match="revoked"):
        services.identity.authenticate_key(key.secret)


def test_remembered_key_still_expires_on_time(services, admin, monkeypatch):
    key = services.identity.create_key(admin, "short", expires_in_days=1)
    services.identity.authenticate_key(key.secret)
    later = now() + timedelta(days=1, seconds=1)
    monkeypatch.setattr(identity, "now", lambda: later)
    assert services.identity.cached_key(key.secret) is None
    with pytest.raises(Unauthenticated, match="expired"):
        services.identity.authenticate_key(key.secret)


def test_row_read_before_a_revocation_is_not_remembered(services, admin, monkeypatch):
    """A request that read the key's row just before a revocation committed must not cache it as valid."""
    key = services.identity.create_key(admin, "race")
    real_uow = services.db.uow

    def uow_then_revoke(**kw):  # the revocation commits while this request holds the row it read
        class Wrapper:
            def __enter__(self):
                self.cm = real_uow(**kw)
                return self.cm.__enter__()

            def __exit__(self, *exc):
                out = self.cm.__exit__(*exc)
                monkeypatch.setattr(services.db, "uow", real_uow)
                services.identity.revoke_key(admin, key.id)
                return out

        return Wrapper()

    monkeypatch.setattr(services.db, "uow", uow_then_revoke)
    services.identity.authenticate_key(key.secret)  # it read the row while the key was still valid
    assert services.identity.cached_key(key.secret) is None
    with pytest.raises(Unauthenticated, match="revoked"):
        services.identity.authenticate_key(key.secret)


def test_last_used_is_still_recorded_for_remembered_keys(services, admin, monkeypatch):
    key = services.identity.create_key(admin, "touch")
    services.identity.authenticate_key(key.secret)
    first = {k.id: k.last_used_at for k in services.identity.list_keys(admin)}[key.id]
    clock = [identity.time.monotonic() + identity.TOUCH_EVERY.total_seconds() + 1]
    monkeypatch.setattr(identity.time, "monotonic", lambda: clock[0])
    later = now() + identity.TOUCH_EVERY + timedelta(seconds=1)
    monkeypatch.setattr(identity, "now", lambda: later)
    services.identity.authenticate_key(key.secret)
    assert {k.id: k.last_used_at for k in services.identity.list_keys(admin)}[key.id] > first
