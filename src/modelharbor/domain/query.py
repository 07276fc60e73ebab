"""One typed query model for every search: what the dialects' filter grammars parse into, what the core evaluates.

A :class:`Query` is a conjunction of conditions (:class:`Comparison`, :class:`All`, :class:`AnyOf`, :class:`Not`),
an ordering (:class:`Order`) and the ``include_inactive`` flag. A :class:`Comparison` names a field by ``kind``
(``attributes``, ``tags``, ``params``, ``metrics``) and ``key``; the core decides which fields and operators it
accepts for a search and refuses the rest with :class:`~modelharbor.domain.errors.InvalidInput`. A search answers
one :class:`Page`: its items and the offset of the next page (None on the last); the dialects turn that offset into
their own page tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar, Union

T = TypeVar("T")
Scalar = Union[str, int, float, bool]  # noqa: UP007 - a runtime alias
#: what a comparison compares with: a scalar, a tuple of them (IN / NOT IN), or None (ISNULL)
Value = Union[Scalar, tuple[Scalar, ...], None]  # noqa: UP007 - a runtime alias

#: the operators a comparison may carry (a search accepts a subset)
OPERATORS = frozenset(
    {"=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE", "IN", "NOT IN", "CONTAINS", "ISNULL"}
)


@dataclass(frozen=True)
class Comparison:
    """``<kind>.<key> <op> <value>``: value is a str, int, float or bool, a tuple of them for IN / NOT IN, a
    substring for CONTAINS, and None for ISNULL."""

    key: str
    op: str
    value: Value = None
    kind: str = "attributes"  # attributes | tags | params | metrics
    case_insensitive: bool = False  # for = and CONTAINS

    @property
    def name(self) -> str:
        """The field as written: ``key``, or ``kind.key`` for anything but an attribute."""
        return self.key if self.kind == "attributes" else f"{self.kind}.{self.key}"


@dataclass(frozen=True)
class All:
    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    part: Condition


Condition = Union[Comparison, All, AnyOf, Not]  # noqa: UP007 - a runtime alias


@dataclass(frozen=True)
class Order:
    """Order by ``<kind>.<key>``; ``nulls_first`` None leaves the database's default. ``dataset_name`` and
    ``dataset_digest`` narrow a metric to the values logged on that dataset."""

    key: str
    ascending: bool = True
    kind: str = "attributes"
    nulls_first: bool | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None

    @property
    def name(self) -> str:
        return self.key if self.kind == "attributes" else f"{self.kind}.{self.key}"


@dataclass(frozen=True)
class Dataset:
    """A dataset a metric was logged on: its name, and its digest when that matters."""

    name: str
    digest: str | None = None


@dataclass(frozen=True)
class Query:
    where: tuple[Condition, ...] = ()  # all must hold
    order: tuple[Order, ...] = ()
    include_inactive: bool = False


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a search: ``next_offset`` is where the next page starts, None on the last."""

    items: tuple[T, ...] = field(default_factory=tuple)
    next_offset: int | None = None


def where(*conditions: Condition, order: tuple[Order, ...] = ()) -> Query:
    """A query from conditions (all must hold)."""
    return Query(tuple(conditions), order)
