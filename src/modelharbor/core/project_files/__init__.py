"""A project's versioned files: commits of content-addressed directory trees over the files service.

- ``service`` ``ProjectFileService``: commits, listings, reads (ranges), streamed writes, a deleted project's files;
- ``trees`` the directory nodes, stored once per project by hash (how commits share unchanged content);
- ``paths`` the path rules (relative, no ``..``, no NUL).

See docs/project-files.md.
"""

from modelharbor.core.project_files.paths import normalise
from modelharbor.core.project_files.service import (
    Commit,
    FileEntry,
    Listing,
    Opened,
    ProjectFileService,
    ProjectRef,
)

__all__ = ["Commit", "FileEntry", "Listing", "Opened", "ProjectFileService", "ProjectRef", "normalise"]
