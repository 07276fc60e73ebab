"""TrackingService: the facade over the tracking modules (a thin class composed of their parts)."""

from __future__ import annotations

from modelharbor.core.tracking.experiments import Experiments
from modelharbor.core.tracking.logged_models import LoggedModels
from modelharbor.core.tracking.runs import Runs
from modelharbor.db.engine import Database


class TrackingService(Experiments, Runs, LoggedModels):
    """Experiments, runs and logged models of the organisations (one instance per server process)."""

    def __init__(self, db: Database):
        self.db = db
