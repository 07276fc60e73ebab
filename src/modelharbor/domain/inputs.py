"""Typed inputs of the core's write and search operations: what a dialect parses a request into before it calls the
core, so the core takes typed values and never a wire dict. A dialect's parse functions check the wire types (and
answer its own messages); the core checks the domain rules (key names, lengths, ranges) of these values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Final


class Unset(Enum):
    """The type of :data:`UNSET`: an argument not given, where None may be a value."""

    UNSET = "UNSET"


UNSET: Final = Unset.UNSET


@dataclass(frozen=True)
class MetricIn:
    """A metric to log: ``timestamp`` in milliseconds since the epoch, ``step`` as MLflow counts them; with
    ``model_id`` it is also that logged model's metric (with its dataset, name and digest both or neither)."""

    key: str
    value: float
    timestamp: int
    step: int = 0
    model_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None


@dataclass(frozen=True)
class TagIn:
    """A key and its value: a param or tag of an experiment, a run or a logged model."""

    key: str
    value: str


@dataclass(frozen=True)
class VersionFileIn:
    """A file of a model version to register: its path inside the version (e.g. ``MLmodel``) and the id of a file
    already uploaded."""

    path: str
    file_id: str


class ViewType(Enum):
    """Which lifecycle stages a search sees."""

    ACTIVE_ONLY = "ACTIVE_ONLY"
    DELETED_ONLY = "DELETED_ONLY"
    ALL = "ALL"


# --- serving ----------------------------------------------------------------------------------------------------
# What a deployment, a version or an environment variable is created or changed with. In a change, None is "not
# given" (the serving PATCHes treat a null as absent; a version's null description is sent as "").


class Unnamed(str):
    """A wire value that is no string where a name was expected (``5``, ``[1]``, ``{}``), handed to the core as a
    ``str`` that names nothing — it holds a NUL character, which no name may, so no lookup or comparison matches it —
    and shows as the client sent it (``repr`` and format), so the core's answer reads as it did when the core took
    values of any type ("Version 5 of deployment 'd' not found")."""

    shown: str

    def __new__(cls, value: object) -> Unnamed:
        self = super().__new__(cls, "\x00" + repr(value))
        self.shown = repr(value)
        return self

    def __repr__(self) -> str:
        return self.shown

    def __format__(self, spec: str) -> str:
        return format(self.shown, spec)


def name_in(value: object) -> str | None:
    """A name from the wire: a string as it is, None when absent, else an :class:`Unnamed`."""
    return value if value is None or isinstance(value, str) else Unnamed(value)


@dataclass(frozen=True)
class FieldIn:
    """A declared input or output field of a deployment or pipeline; ``widget`` is the client's free-form JSON."""

    name: str
    data_type: str
    widget: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "data_type": self.data_type, "widget": self.widget}


@dataclass(frozen=True)
class _ServedIn:
    """What a new deployment or pipeline declares (``input_type``/``output_type`` None: structured; fields None:
    none)."""

    name: str
    description: str | None = None
    input_type: str | None = None
    output_type: str | None = None
    input_fields: tuple[FieldIn, ...] | None = None
    output_fields: tuple[FieldIn, ...] | None = None
    labels: Mapping[str, str] | None = None


@dataclass(frozen=True)
class DeploymentIn(_ServedIn):
    """A new deployment."""

    supports_request_format: bool = True


@dataclass(frozen=True)
class DeploymentPatch:
    """A change of a deployment: what is not None changes (``default_version``: the version to make default)."""

    name: str | None = None
    description: str | None = None
    labels: Mapping[str, str] | None = None
    input_fields: tuple[FieldIn, ...] | None = None
    output_fields: tuple[FieldIn, ...] | None = None
    default_version: str | None = None


@dataclass(frozen=True)
class VersionIn:
    """A new deployment version, or a change of one (what is not None changes). ``environment`` ``""``: the newest
    base environment; ``settings``: the UbiOps settings kept as sent (free-form JSON, by key)."""

    version: str | None = None
    environment: str | None = None
    environment_tag: str | None = None
    description: str | None = None
    labels: Mapping[str, str] | None = None
    minimum_instances: int | None = None
    maximum_instances: int | None = None
    maximum_idle_time: int | None = None
    request_retention_time: int | None = None
    maximum_queue_size: int | None = None
    request_retention_mode: str | None = None
    instance_type_group_name: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PipelineIn(_ServedIn):
    """A new pipeline (an edge sends its input type as its output type when the client sent none)."""


@dataclass(frozen=True)
class PipelineVersionIn:
    """A new pipeline version, or a change of one (what is not None changes; ``metadata``, free-form JSON where null
    is a value, UNSET when not given). ``objects`` and ``attachments`` are the pipeline's graph as the client sent
    it (JSON): the core checks it against the project's deployments as it reads it (core/serving/pipeline_graph.py).
    """

    version: str | None = None
    description: str | None = None
    labels: Mapping[str, str] | None = None
    request_retention_mode: str | None = None
    request_retention_time: int | None = None
    metadata: Any = UNSET
    objects: Any = None
    attachments: Any = None


@dataclass(frozen=True)
class EnvVarIn:
    """An environment variable, or a change of one (in a change, what is not None changes)."""

    name: str | None = None
    value: str | None = None
    secret: bool | None = None


# --- the pretrained-model catalogue (UFDL and the native API) --------------------------------------------------
Faults = Mapping[str, tuple[str, ...]]
"""Field faults an edge found in a body, DRF-style: a field (or ``non_field_errors``) → its messages."""


@dataclass(frozen=True)
class PretrainedModelIn:
    """A pretrained model's fields as sent (None: not sent, or sent wrong: see ``faults``). ``framework`` is a
    framework's pk, ``domain`` a domain's name, ``licence`` a licence's name or pk. ``faults`` are the body's own
    faults the edge found (a wrong type, a blank or over-long text, a required field missing); the core adds those
    it finds in the database (no such framework, domain or licence) and answers them all in one error, after its
    permission and existence checks, storing nothing."""

    name: str | None = None
    url: str | None = None
    description: str | None = None
    metadata: str | None = None
    framework: int | None = None
    domain: str | None = None
    licence: str | int | None = None
    faults: Faults = field(default_factory=dict)


@dataclass(frozen=True)
class FrameworkIn:
    """A framework's fields as sent (None: not sent); ``faults`` as for :class:`PretrainedModelIn`."""

    name: str | None = None
    version: str | None = None
    faults: Faults = field(default_factory=dict)


@dataclass(frozen=True)
class LicenceIn:
    """A licence's fields as sent (None: not sent); ``faults`` as for :class:`PretrainedModelIn`."""

    name: str | None = None
    url: str | None = None
    faults: Faults = field(default_factory=dict)


@dataclass(frozen=True)
class SubdescriptorEdit:
    """Add names to, or remove them from, one of a licence's lists: ``method`` ``add``/``remove``, ``kind`` one of
    ``permissions``, ``conditions``, ``limitations``, ``domains``; ``faults`` as for :class:`PretrainedModelIn`."""

    method: str = ""
    kind: str = ""
    names: tuple[str, ...] = ()
    faults: Faults = field(default_factory=dict)


@dataclass(frozen=True)
class DeploySettings:
    """How to serve an imported model (Kore.ai's deploy): a display ``name``, the ``device`` profile asked for (kept
    as a label), the generation hyper-parameters (handed to the package as ``KORE_*`` environment variables), the
    stop sequences, and the scaling: instance bounds and the idle seconds before an instance stops."""

    name: str
    device: str
    temperature: float
    max_tokens: int
    top_p: float
    top_k: int
    stop: tuple[str, ...] = ()
    min_instances: int = 1
    max_instances: int = 1
    idle_seconds: int = 300
