"""The model catalogue: pretrained models (UFDL's catalogue, also the native API's) and the models imported through
Kore.ai, with the jobs run on them.

The package, by seam (each module's docstring says what it owns):

- ``pretrained`` ``CatalogueService``: pretrained models with a framework, a domain, a licence and (optionally)
  data; frameworks, licences and domains;
- ``model_imports`` ``ImportService``: Kore.ai's model import, an uploaded archive becoming a catalogue model (and a
  registered version) once a background task has checked it; it is an upload purpose (``core/files/purposes.py``);
- ``model_jobs`` ``ModelJobService``: Kore.ai's export, deploy and undeploy jobs on imported models.

Other modules import from here (the names below) or from the module that owns a name.
"""

from modelharbor.core.catalogue.model_imports import (
    MODEL_EXTENSIONS,
    ArchiveRejected,
    ImportService,
    registry_name,
)
from modelharbor.core.catalogue.model_jobs import DEPLOY, EXPORT, UNDEPLOY, JobFailed, ModelJobService
from modelharbor.core.catalogue.pretrained import (
    NON_FIELD,
    REQUIRED,
    SUBDESCRIPTORS,
    CatalogueService,
    FieldErrors,
    missing_name,
    subdescriptor_faults,
    text_fault,
    url_fault,
)

__all__ = [
    "DEPLOY",
    "EXPORT",
    "MODEL_EXTENSIONS",
    "NON_FIELD",
    "REQUIRED",
    "SUBDESCRIPTORS",
    "UNDEPLOY",
    "ArchiveRejected",
    "CatalogueService",
    "FieldErrors",
    "ImportService",
    "JobFailed",
    "ModelJobService",
    "missing_name",
    "registry_name",
    "subdescriptor_faults",
    "text_fault",
    "url_fault",
]
