"""Upload purposes: what a chunked session's file is for, which decides the extensions it may have and what opening
and completing the session also do.

A dialect opens a session with one call (:meth:`UploadService.open`, ``uploads.py``); the context it names picks the
purpose:

- a **registered purpose** claims its context: the model import (``core/catalogue/model_imports.py``) claims
  ``model``. It takes archive and weight extensions only, reserves the model as the session opens (the model's id is
  kept in the session's meta and answered to the caller) and, on completion, attaches the file and enqueues the
  import task;
- any other context is a **plain file**: any extension, unless the dialect names those it accepts (Kore.ai: its
  media types, :data:`MEDIA_EXTENSIONS`). A single-request upload (``FileService.upload``) takes the same rule.

Invariants
- The extension is checked before anything is written: a refused session leaves nothing behind.
- The opening hook runs in the transaction that creates the session row, before the row: the session and what the
  hook reserved are committed together or not at all.
- The completion hook runs inside the completing transaction — for a session completed as it opens, from content
  the organisation already holds (``resume.py``), the opening one, after the opening hook; its result is kept on
  the session, so a repeated ``complete`` answers the same. It is found by the session's context, however the session was opened, and ignores
  a session its purpose did not open (the import's hook needs the model its opening reserved).
- :meth:`UploadService.start` (the native API, MLflow's multipart artifacts) opens a plain file of any extension
  with no opening hook, whatever its context.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from modelharbor.db.tables import UploadSessionRow
from modelharbor.domain.entities import FileRecord
from modelharbor.domain.errors import UnsupportedType
from modelharbor.domain.principal import Principal

# An opening hook runs inside the opening transaction, before the session row: (session, principal, file name,
# options) -> what it reserved, kept as the session's meta and answered to the caller.
OpeningHook = Callable[[Session, Principal, str, Mapping[str, Any]], dict[str, Any]]

# A completion hook runs inside the completing transaction: (session, row, file) -> result dict kept on the session.
CompletionHook = Callable[[Session, UploadSessionRow, FileRecord], dict[str, Any]]


# Media files (Kore.ai's File Upload API: audio, video and images).
MEDIA_EXTENSIONS = frozenset({"m4a", "mp3", "webm", "mp4", "mpga", "wav", "mpeg", "png", "jpeg", "jpg", "webp", "gif"})


@dataclass(frozen=True)
class UploadPurpose:
    """What a session's file is for. ``context`` is the file context a registered purpose claims (None: a plain
    file, in the caller's context); ``extensions`` those its file may have (None: any)."""

    name: str
    context: str | None = None
    extensions: frozenset[str] | None = None
    on_open: OpeningHook | None = None
    on_complete: CompletionHook | None = None

    def check_extension(self, extension: str, context: str | None = None) -> None:
        """Refuse an extension the purpose does not take (415 ``UNSUPPORTED_FILE_TYPE``); the message names the
        session's ``context``, or (a single upload, whose context may follow its bytes) the file type alone."""
        if self.extensions is not None and extension not in self.extensions:
            allowed = ", ".join(sorted(self.extensions))
            if context is None:
                message = f"file type {extension or '(none)'!r} is not supported; allowed: {allowed}"
            else:
                message = f"fileExtension {extension!r} is not allowed for fileContext {context!r}; allowed: {allowed}"
            raise UnsupportedType(message, code="UNSUPPORTED_FILE_TYPE")


PLAIN_FILE = UploadPurpose("file")


def plain_file(extensions: Iterable[str] | None = None) -> UploadPurpose:
    """A plain file; a dialect may name the extensions it accepts (None: any)."""
    return PLAIN_FILE if extensions is None else UploadPurpose("file", extensions=frozenset(extensions))
