"""Wire values into the core's typed arguments, for the values several edges send alike: a project's stage list
(native API, Domino) and the serving bodies (native API, UbiOps). Each parse function checks the wire types of a
JSON value (a request body's field, or a native body model's dump) with the messages the core used to answer, and
calls the core's pure checks between them where a later value's type was checked after an earlier value's domain
rule, so a request with several faults answers the first as before. The core checks the domain rules again on the
typed values. Pure: no services, no queries.
"""

from __future__ import annotations

from typing import Any

from modelharbor.core.projects import check_stage_count, check_stage_name, stage_name_fault
from modelharbor.domain.errors import InvalidInput


# --- projects ---------------------------------------------------------------------------------------------------
def stage_list(value: Any) -> list[str]:
    """A project's stage list: a non-empty JSON array of strings (its names checked in order, as the core will)."""
    if not isinstance(value, list):
        raise InvalidInput("'stages' must be a non-empty list of stage names.")
    check_stage_count(len(value))
    seen: set[str] = set()
    for st in value:
        if not isinstance(st, str):
            raise stage_name_fault(st)
        check_stage_name(st, seen)
    return value
