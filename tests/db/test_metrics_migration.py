"""Migration de268c9c9449 on SQLite and PostgreSQL: duplicate history rows collapse (the first kept), NaN rows become
value 0 with is_nan, the latest values follow MLflow's rule afterwards; a downgrade puts NaN back as NULL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from modelharbor.db.engine import Database
from modelharbor.db.migrate import downgrade, upgrade
from modelharbor.db.tables import Base

BEFORE = "f5705435fc9d"
RUN = "ab" * 16


def _seed(db: Database) -> None:
    t = Base.metadata.tables
    with db.engine.begin() as conn:
        conn.execute(t["organisations"].insert(), [{"id": "o" * 32, "name": "mig", "created_at": datetime.now(UTC)}])
        exp_id = conn.execute(
            t["tracking_experiments"].insert().returning(t["tracking_experiments"].c.id),
            [{"org_id": "o" * 32, "name": "e", "is_default": False, "lifecycle_stage": "active",
              "creation_time": 1, "last_update_time": 1}],
        ).scalar_one()  # fmt: skip
        conn.execute(
            t["tracking_runs"].insert(),
            [{"id": RUN, "experiment_id": exp_id, "name": "r", "user_id": "u", "status": "RUNNING", "start_time": 1,
              "end_time": None, "lifecycle_stage": "active", "inputs": {}, "outputs": {}}],
        )  # fmt: skip
        history = [
            ("acc", 0.5, 1, 0), ("acc", 0.5, 1, 0), ("acc", 0.7, 2, 1), ("acc", 0.5, 1, 0),
            ("loss", None, 1, 0), ("loss", None, 1, 0), ("loss", 0.0, 1, 0), ("loss", 0.3, 1, 0), ("loss", 0.1, 1, 0),
        ]  # fmt: skip
        for key, value, ts, step in history:
            conn.execute(
                text("INSERT INTO tracking_metrics (run_id, key, value, timestamp, step) VALUES (:r, :k, :v, :t, :s)"),
                {"r": RUN, "k": key, "v": value, "t": ts, "s": step},
            )
        # as the old code left them: the last logged of a step and timestamp won
        for key, value, ts, step in (("acc", 0.7, 2, 1), ("loss", 0.1, 1, 0)):
            conn.execute(
                text(
                    "INSERT INTO tracking_latest_metrics (run_id, key, value, timestamp, step) "
                    "VALUES (:r, :k, :v, :t, :s)"
                ),
                {"r": RUN, "k": key, "v": value, "t": ts, "s": step},
            )


def test_duplicates_collapse_and_latest_is_recomputed(db_url):
    downgrade(db_url, BEFORE)
    try:
        db = Database(db_url)
        _seed(db)
        db.dispose()
        upgrade(db_url)
        db = Database(db_url)
        with db.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT id, key, value, is_nan, timestamp, step FROM tracking_metrics ORDER BY id")
            ).all()
            latest = dict(
                conn.execute(text("SELECT key, value FROM tracking_latest_metrics WHERE run_id = :r"), {"r": RUN}).all()
            )
        db.dispose()
        assert [(r.id, r.key, r.value, bool(r.is_nan)) for r in rows] == [
            (1, "acc", 0.5, False),
            (3, "acc", 0.7, False),
            (5, "loss", 0.0, True),
            (7, "loss", 0.0, False),
            (8, "loss", 0.3, False),
            (9, "loss", 0.1, False),
        ]
        assert latest == {"acc": 0.7, "loss": 0.3}  # highest step, then timestamp, then the larger value

        downgrade(db_url, BEFORE)
        db = Database(db_url)
        with db.engine.connect() as conn:
            values = conn.execute(text("SELECT value FROM tracking_metrics WHERE key = 'loss' ORDER BY id")).scalars()
            assert list(values) == [None, 0.0, 0.3, 0.1]
        db.dispose()
    finally:
        upgrade(db_url)
