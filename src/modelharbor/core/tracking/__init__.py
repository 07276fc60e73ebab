"""Experiment tracking (the MLflow model): experiments, runs with metrics/params/tags, MLflow 3 logged models, and
the proxied artifacts of runs and logged models.

Experiments belong to an organisation (names unique within it); each organisation has one default experiment
("Default"), which callers may address as id ``"0"``. Runs and logged models live in an experiment and follow its
organisation. Artifacts are kept under ``<experiment_id>/...`` as files of the files service.
Times are integer milliseconds since the epoch, as MLflow carries them. Params are immutable once logged. The
entities returned (``Experiment``, ``Run``, ``LoggedModel``, ``Metric``, ``ArtifactEntry``) are in
:mod:`modelharbor.domain.entities`.

The package, by seam (each module's docstring says what it owns):

- ``validation`` names, limits, artifact URIs and input checks; ``metrics`` run metrics as MLflow keeps them
  (history, logged models' copies, latest values) and the metric tests of logged-model searches;
- ``experiments``, ``runs``, ``logged_models`` the operations on each;
- ``service`` the ``TrackingService`` facade composed of the parts above;
- ``artifacts`` the proxied artifact tree (``ArtifactService``), multipart uploads included.

Other modules import from here (the names below) or from the module that owns a name; none calls a ``_``-prefixed
member of the package.
"""

from modelharbor.core.tracking.artifacts import ArtifactService, clean_path
from modelharbor.core.tracking.metrics import finite, now_ms
from modelharbor.core.tracking.runs import run_summaries
from modelharbor.core.tracking.service import TrackingService
from modelharbor.core.tracking.validation import ACTIVE, DELETED, AlreadyExists

__all__ = [
    "ACTIVE",
    "DELETED",
    "AlreadyExists",
    "ArtifactService",
    "TrackingService",
    "clean_path",
    "finite",
    "now_ms",
    "run_summaries",
]
