"""MLflow dialect: the tracking, model-registry and proxied-artifact REST APIs the ``mlflow`` client calls.

Mounted at ``/api/2.0/mlflow`` (tracking + registry) and ``/api/2.0/mlflow-artifacts`` (artifacts).
See docs/dialects/mlflow.md for coverage.
"""

from modelharbor.api.dialects.mlflow.common import mounts

__all__ = ["mounts"]
