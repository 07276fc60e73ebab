"""Serving: environments, deployments with versions, package revisions and their builds, requests, and
environment variables (with secrets) — all inside a project.

- An **environment** is a base environment (the interpreters this machine has, ``python3-11`` …) or a custom one
  of the project: tags built from environment packages (environment_tags.py, environment_builds.py).
- A **deployment** declares its input and output (``structured`` with typed fields, or ``plain`` text); a
  **version** of it says where and how it runs (environment and tag, instances, idle time, request retention); a
  **revision** is an uploaded package (a zip holding ``deployment.py`` with a ``Deployment`` class whose
  ``request(data)`` answers). Each upload is built in the background (task ``serving_build``): unpacked safely,
  checked, its environment built, one instance started to prove it initialises. A version serves its newest
  revision that built, in the environment that build used; a rebuild (asked for, or after the version's
  environment tag was built or the version moved to another environment) builds the same package again.
- **Requests** are validated against the input fields, answered by the executor (``compute/``), and the output
  checked against the output fields. A failed prediction is an answer with status ``failed``, not an error.
  The route to a version is cached for a moment so a request costs no database round trip.
- **Environment variables** exist at project, deployment and version level; the narrowest wins. Values are
  encrypted at rest with the server key; a secret's value is never returned, logged or exported.

Permission: reading takes ``SERVING_READ`` in the project's organisation; changing takes ``SERVING_WRITE`` and
write access to the project (core/projects.py); requests take ``SERVING_REQUEST``.

The package, by seam (each module's docstring says what it owns):

- ``validation`` limits and field validation; ``entities`` what the service returns; ``packages`` unpacking and
  inspecting packages (pure file work);
- ``lookup`` project/deployment/version/revision lookups and the route cache (``ServingLookup``, the base);
- ``environments``, ``environment_tags``, ``environment_builds`` environments, their tags and builds;
  ``environment_catalog`` an organisation's environments without a project (Domino's), with revisions;
- ``deployments`` deployments and versions; ``revisions`` revisions and their builds; ``env_vars`` variables;
- ``requests`` direct and batch requests; ``request_history`` kept requests of deployments and pipelines;
- ``pipelines``, ``pipeline_graph``, ``pipeline_requests`` pipelines (they use ServingService's public methods
  only);
- ``logs`` what deployments write while they run (read from the executor; the UbiOps API's LogQL subset);
- ``service`` the ``ServingService`` facade composed of the parts above.

Other modules import from here (the names below) or from the module that owns a name; none calls a ``_``-prefixed
member of the package.
"""

from modelharbor.core.serving.entities import (
    Deployment,
    DeploymentVersion,
    EnvironmentInfo,
    EnvVar,
    Field,
    Pipeline,
    PipelineResult,
    PipelineVersion,
    RequestResult,
    Revision,
)
from modelharbor.core.serving.packages import (
    PackageRejected,
    check_ubiops_yaml,
    environment_key,
    inspect_deployment,
    unpack_archive,
    unpack_package,
)
from modelharbor.core.serving.service import ServingService
from modelharbor.core.serving.validation import BATCH_TASK, BUILD_TASK, check_fields, truncate

__all__ = [
    "BATCH_TASK",
    "BUILD_TASK",
    "Deployment",
    "DeploymentVersion",
    "EnvVar",
    "EnvironmentInfo",
    "Field",
    "PackageRejected",
    "Pipeline",
    "PipelineResult",
    "PipelineVersion",
    "RequestResult",
    "Revision",
    "ServingService",
    "check_fields",
    "check_ubiops_yaml",
    "environment_key",
    "inspect_deployment",
    "truncate",
    "unpack_archive",
    "unpack_package",
]
