"""RegistryService: the facade over the registry modules (a thin class composed of their parts); its constructor
wires the collaborators."""

from __future__ import annotations

from collections.abc import Callable

from modelharbor.core.registry.cards import Cards
from modelharbor.core.registry.lookup import RegistryLookup
from modelharbor.core.registry.models import Models
from modelharbor.core.registry.search import Search
from modelharbor.core.registry.stages import Stages
from modelharbor.core.registry.versions import Versions
from modelharbor.db.engine import Database
from modelharbor.domain.principal import Principal


class RegistryService(Models, Versions, Stages, Search, Cards, RegistryLookup):
    """Registered models, their versions, stages, aliases and tags, searches of them and their read models (cards;
    one instance per server process)."""

    def __init__(self, db: Database, *, logged_model_run: Callable[[Principal, str], str | None] | None = None):
        self.db = db
        # Finds the run a logged model came from: versions registered from ``models:/m-…`` carry that run.
        self._logged_model_run = logged_model_run
