"""Migration guards: a single head, models and migrations in step, upgrade/downgrade/upgrade works."""

from __future__ import annotations

from alembic import command
from alembic.script import ScriptDirectory

from modelharbor.db.migrate import alembic_config, downgrade, upgrade


def test_single_head(sqlite_url):
    heads = ScriptDirectory.from_config(alembic_config(sqlite_url)).get_heads()
    assert len(heads) == 1, heads


def test_models_match_migrations(db_url):
    command.check(alembic_config(db_url))  # raises if autogenerate would produce a diff


def test_upgrade_downgrade_upgrade(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    upgrade(url)
    downgrade(url, "base")
    upgrade(url)
    command.check(alembic_config(url))
