"""Vendor dialects: thin adapters that translate paths, auth, casing, ids and errors onto the one core.

Dialects never import each other.
"""

from modelharbor.api.dialects import domino, kore, mlflow, ubiops, ufdl  # noqa: E402

# Every dialect the application mounts, as declared in its package (api/dialect.py).
DIALECTS = [domino.DIALECT, kore.DIALECT, mlflow.DIALECT, ubiops.DIALECT, ufdl.DIALECT]
