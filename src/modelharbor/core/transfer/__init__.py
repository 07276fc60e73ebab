"""Project exports and imports: a project's deployments, versions (with their packages), pipelines, custom
environments and environment variables written to a zip, and such a zip read back into a project.

The zip follows format ``v1.0`` of UbiOps' import template (format.py; docs/dialects/ubiops.md has the layout).

**Exports** (task ``project_export``): ``pending`` → ``processing`` → ``completed`` | ``failed``. A thread writes
the zip (packages streamed into it from the blob store) straight into the files service's upload, which hashes and
stores it meanwhile — no temporary file. A secret's value is never written, whatever the selection says.

**Imports** (task ``project_import``): ``pending`` → ``scanning`` (fetched if it is a link, every entry checked
and read once, counting the bytes; a zip in a local store is read in place, one in S3 copied to a temporary file)
→ ``confirmation`` (``content`` describes the zip in the shape of the confirmation) → after the confirmation
``confirmation_pending`` → ``processing`` → ``completed``; with ``skip_confirmation`` straight from ``scanning`` to
``processing``. Any step may end ``failed``. Objects are created through the serving and pipeline services
(packages become revisions whose builds run as usual; a thread reads each from the zip while its upload hashes and
stores it — unless the organisation already holds the package's bytes: then the revision points at them and nothing
is read or stored again; such packages are hashed while scanning, or before storing, and linked by that SHA-256). The
whole selection is checked against the project first; if a creation still fails, what this import created is
deleted again — an import lands whole or not at all.

The package, by seam (each module's docstring says what it owns):

- ``entities`` what the service returns, task names and statuses; ``format`` the zip layout, limits and the checks
  every zip passes; ``selection`` the shape of what is exported or imported (normalising, confirmations, secrets);
  ``scan`` the content an import zip describes;
- ``base`` what the parts share (collaborators, project lookup, listings); ``exports`` and ``export_zip`` exports;
  ``project_imports`` imports (creating, confirming, scanning, processing; links fetched by storage/fetch.py);
  ``import_objects`` creating and undoing an import's objects; ``staging`` packages written before an import commits;
- ``service`` the ``TransferService`` facade composed of the parts above.

Thread/event-loop bridges are core/bridges.py. Other modules import from here (the names below); this package
calls other services through their public methods only.
"""

from modelharbor.core.transfer.entities import EXPORT_TASK, IMPORT_TASK, Export, Import, ImportForm, OpenedZip
from modelharbor.core.transfer.format import Rejected, TransferLimits
from modelharbor.core.transfer.selection import KINDS
from modelharbor.core.transfer.service import TransferService

__all__ = [
    "EXPORT_TASK",
    "IMPORT_TASK",
    "KINDS",
    "Export",
    "Import",
    "ImportForm",
    "OpenedZip",
    "Rejected",
    "TransferLimits",
    "TransferService",
]
