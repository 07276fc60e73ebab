"""Files: records over content-addressed blobs, single and chunked uploads, ranged reads, signed links, and the
intents that make "bytes before rows" crash-safe.

The package, by seam (each module's docstring says what it owns):

- ``service`` ``FileService``: file records, single streamed uploads, ranged reads, signed links, delete; the name,
  extension and range rules every upload shares; ``in_use_by`` (what a file is the bytes of);
- ``uploads`` ``UploadService``, the upload engine: chunked sessions that resume, take chunks in any order and in
  parallel, and verify (its docstring states the invariants);
- ``blobs`` content-addressed blobs made of store segments (dedup, hashing, segmented reads);
- ``pending`` intents: store objects a crash may leave unreferenced, and the sweep that removes them;
- ``links`` signed, expiring download links.

Other modules import from here (the names below) or from the module that owns a name.
"""

from modelharbor.core.files import blobs, pending
from modelharbor.core.files.blobs import Segment, SegmentedReader
from modelharbor.core.files.links import LinkSigner, SignedLink
from modelharbor.core.files.pending import PendingObjects
from modelharbor.core.files.service import (
    FILE_SOURCE,
    ByteRange,
    FileService,
    check_context,
    check_name,
    content_type_of,
    extension_of,
    in_use_by,
    limited,
    parse_range,
    to_record,
)
from modelharbor.core.files.uploads import (
    Completed,
    CompletionHook,
    UploadLimits,
    UploadService,
    prefix_of,
    session_entity,
)

__all__ = [
    "FILE_SOURCE",
    "ByteRange",
    "Completed",
    "CompletionHook",
    "FileService",
    "LinkSigner",
    "PendingObjects",
    "Segment",
    "SegmentedReader",
    "SignedLink",
    "UploadLimits",
    "UploadService",
    "blobs",
    "check_context",
    "check_name",
    "content_type_of",
    "extension_of",
    "in_use_by",
    "limited",
    "parse_range",
    "pending",
    "prefix_of",
    "session_entity",
    "to_record",
]
