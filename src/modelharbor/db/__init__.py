"""Persistence: SQLAlchemy 2 tables, engine/unit of work, Alembic migrations. Returns entities, not rows."""
