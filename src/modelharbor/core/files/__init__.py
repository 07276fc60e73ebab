"""Files: records over content-addressed blobs, single and chunked uploads, ranged reads, signed links, and the
intents that make "bytes before rows" crash-safe.

The package, by seam (each module's docstring says what it owns):

- ``service`` ``FileService``: file records, single streamed uploads, ranged reads, signed links, delete; the name,
  extension and range rules every upload shares;
- ``usage`` which files are internal (kept by the server for its own objects, by context) and what uses a file
  (``used_by``, the read model behind ``GET /files/{id}``; ``in_use_by``, why a delete is refused);
- ``uploads`` ``UploadService``, the upload engine: chunked sessions that resume, take chunks in any order and in
  parallel, and verify (its docstring states the invariants);
- ``purposes`` what a session's file is for (a plain file, or a purpose a service registers, such as a model
  import): its extension rule, and what opening and completing the session also do;
- ``blobs`` content-addressed blobs made of store segments (dedup, hashing, segmented reads);
- ``pending`` intents: store objects a crash may leave unreferenced, and the sweep that removes them;
- ``links`` signed, expiring download links.

Other modules import from here (the names below) or from the module that owns a name.
"""

from modelharbor.core.files import blobs, pending
from modelharbor.core.files.blobs import Segment, SegmentedReader
from modelharbor.core.files.links import LinkSigner, SignedLink
from modelharbor.core.files.pending import PendingObjects
from modelharbor.core.files.purposes import (
    PLAIN_FILE,
    CompletionHook,
    OpeningHook,
    UploadPurpose,
    plain_file,
)
from modelharbor.core.files.service import (
    ByteRange,
    FileService,
    check_context,
    check_name,
    content_type_of,
    extension_of,
    limited,
    parse_range,
    to_record,
)
from modelharbor.core.files.uploads import (
    ChunkIn,
    Completed,
    Opened,
    UploadLimits,
    UploadService,
    prefix_of,
    session_entity,
)
from modelharbor.core.files.usage import (
    DEPLOYMENT_PACKAGE,
    ENVIRONMENT_PACKAGE,
    FILE_SOURCE,
    INTERNAL_CONTEXTS,
    PROJECT_EXPORT,
    PROJECT_FILE,
    PROJECT_IMPORT,
    FileDetail,
    FileUse,
    in_use_by,
    is_internal,
    used_by,
)

__all__ = [
    "DEPLOYMENT_PACKAGE",
    "ENVIRONMENT_PACKAGE",
    "FILE_SOURCE",
    "INTERNAL_CONTEXTS",
    "PROJECT_EXPORT",
    "PROJECT_FILE",
    "PROJECT_IMPORT",
    "PLAIN_FILE",
    "ByteRange",
    "ChunkIn",
    "Completed",
    "CompletionHook",
    "FileDetail",
    "FileService",
    "FileUse",
    "LinkSigner",
    "OpeningHook",
    "Opened",
    "PendingObjects",
    "Segment",
    "SegmentedReader",
    "SignedLink",
    "UploadLimits",
    "UploadPurpose",
    "UploadService",
    "blobs",
    "check_context",
    "check_name",
    "content_type_of",
    "extension_of",
    "in_use_by",
    "is_internal",
    "limited",
    "parse_range",
    "pending",
    "plain_file",
    "prefix_of",
    "session_entity",
    "to_record",
    "used_by",
]
