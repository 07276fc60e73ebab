"""The model registry: registered models, numbered versions, tags, aliases, stages and reviews, and the files of
versions.

Everything belongs to an organisation: a registered model's name is unique within it, and another organisation's
models are simply not found. Viewers may read, members may write (``REGISTRY_READ`` / ``REGISTRY_WRITE``).
Versions are numbered 1, 2, 3… per model and numbers are never reused after a delete. Stages follow MLflow
(None / Staging / Production / Archived); moving a version into Staging or Production may archive the versions
already there. Searches take a domain query (:mod:`modelharbor.domain.query`; the MLflow dialect parses its
filter strings into one) and answer one offset :class:`Page`.
A model may belong to a project (core/projects.py): then its versions take the project's stages, and changing it
takes write access to the project. Reviews move a version into a stage once every reviewer approved; while one is
open the version's stage does not change any other way. The entities returned (``RegisteredModel``,
``ModelVersion``, ``Review``, ``VersionFile``) are in :mod:`modelharbor.domain.entities`.

The package, by seam (each module's docstring says what it owns):

- ``validation`` limits and input checks; ``statements`` the prebuilt statements of the hot paths;
- ``lookup`` model/version lookups and entity reads (``RegistryLookup``, the base);
- ``models`` registered models and their tags; ``versions`` versions and their tags; ``stages`` stage transitions
  and aliases; ``search`` searches and listings; ``cards`` read models (:mod:`modelharbor.domain.cards`): a page of
  models or versions with their projects, creators' usernames, the caller's rights and runs, in a few queries;
- ``service`` the ``RegistryService`` facade composed of the parts above;
- ``reviews`` Domino's model reviews (``ReviewService``) and the rule the stage changes follow while one is open;
- ``model_files`` the files of a version: resolving its source, registering a version from uploaded files;
- ``run_registration`` registering the model an experiment run logged (Domino's "create from a run").

Other modules import from here (the names below) or from the module that owns a name; none calls a ``_``-prefixed
member of the package.
"""

from modelharbor.core.registry.model_files import MAX_VERSION_FILES, ModelFileService, UnsupportedSource
from modelharbor.core.registry.reviews import ReviewService
from modelharbor.core.registry.run_registration import RunRegistration
from modelharbor.core.registry.service import RegistryService
from modelharbor.core.registry.validation import (
    MAX_MODELS_PAGE,
    MAX_VERSIONS_PAGE,
    ms,
    validate_alias,
    validate_name,
    validate_tags,
    validate_version,
)

__all__ = [
    "MAX_MODELS_PAGE",
    "MAX_VERSIONS_PAGE",
    "MAX_VERSION_FILES",
    "ModelFileService",
    "RegistryService",
    "ReviewService",
    "RunRegistration",
    "UnsupportedSource",
    "ms",
    "validate_alias",
    "validate_name",
    "validate_tags",
    "validate_version",
]
