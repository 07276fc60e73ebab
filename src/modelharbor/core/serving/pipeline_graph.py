"""A pipeline version's graph: its objects and attachments validated (known deployments and versions, field
mappings between declared fields of matching types, every object fed, ``pipeline_end`` fed) and ordered (no
cycles)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelharbor.core.clock import new_uuid
from modelharbor.core.serving.request_history import lookup_key
from modelharbor.db.tables_serving import DeploymentRow, DeploymentVersionRow, PipelineRow
from modelharbor.domain.errors import InvalidInput

START, END = "pipeline_start", "pipeline_end"
MAX_OBJECTS = 100
MAX_ATTACHMENTS = 500


class PipelineGraph:
    """Validating and ordering a pipeline version's graph (mixed into PipelineService)."""

    def _validate_graph(self, s: Session, p, pl: PipelineRow, objects: Any, attachments: Any):
        if not isinstance(objects, list) or len(objects) > MAX_OBJECTS:
            raise InvalidInput(f"'objects' must be a list of at most {MAX_OBJECTS} objects.")
        if not isinstance(attachments, list) or len(attachments) > MAX_ATTACHMENTS:
            raise InvalidInput(f"'attachments' must be a list of at most {MAX_ATTACHMENTS} attachments.")
        nodes: dict[str, dict[str, Any]] = {}
        out_objects = []
        for obj in objects:
            if not isinstance(obj, dict):
                raise InvalidInput("Each pipeline object must be an object {name, reference_name, ...}.")
            name = obj.get("name")
            if not isinstance(name, str) or not 0 < len(name) <= 64 or name in (START, END):
                raise InvalidInput(f"Invalid pipeline object name {name!r} (1 to 64 characters, not {START}/{END}).")
            if name in nodes:
                raise InvalidInput(f"Pipeline object {name!r} appears twice.")
            kind = obj.get("reference_type") or "deployment"
            if kind != "deployment":
                raise InvalidInput(
                    f"Pipeline object {name!r}: reference_type {kind!r} is not supported; use deployments."
                )
            ref = obj.get("reference_name")
            d = (
                s.scalar(select(DeploymentRow).where(DeploymentRow.project_id == p.id, DeploymentRow.name == ref))
                if lookup_key(ref)
                else None
            )
            if d is None:
                raise InvalidInput(f"Pipeline object {name!r} refers to an unknown deployment {ref!r}.")
            pinned = obj.get("version") or obj.get("reference_version")
            if pinned is not None and not s.scalar(
                select(DeploymentVersionRow.id).where(
                    DeploymentVersionRow.deployment_id == d.id, DeploymentVersionRow.version == pinned
                )
            ):
                raise InvalidInput(f"Pipeline object {name!r}: deployment {ref!r} has no version {pinned!r}.")
            for key in ("configuration", "metadata"):
                if obj.get(key) is not None and not isinstance(obj[key], dict):
                    raise InvalidInput(f"Pipeline object {name!r}: '{key}' must be an object.")
            entry = {
                "id": obj.get("id") if isinstance(obj.get("id"), str) else new_uuid(),
                "name": name,
                "reference_type": "deployment",
                "reference_name": ref,
                "version": pinned,
                "configuration": obj.get("configuration") or {},
                "metadata": obj.get("metadata") or {},
            }
            nodes[name] = {
                "in_type": d.input_type,
                "out_type": d.output_type,
                "in": {f["name"]: f["data_type"] for f in d.input_fields or []},
                "out": {f["name"]: f["data_type"] for f in d.output_fields or []},
            }
            out_objects.append(entry)
        start = {"out_type": pl.input_type, "out": {f["name"]: f["data_type"] for f in pl.input_fields or []}}
        end = {"in_type": pl.output_type, "in": {f["name"]: f["data_type"] for f in pl.output_fields or []}}
        fed: dict[str, list[str]] = {}
        out_attachments = []
        for att in attachments:
            if not isinstance(att, dict):
                raise InvalidInput("Each attachment must be an object {destination_name, sources}.")
            dest = att.get("destination_name")
            if dest != END and dest not in nodes:
                raise InvalidInput(f"Attachment destination {dest!r} is not an object of this version (or {END}).")
            if dest in fed:
                raise InvalidInput(f"{dest!r} has two attachments: list every source in one attachment.")
            target = end if dest == END else nodes[dest]
            sources = att.get("sources")
            if not isinstance(sources, list) or not sources:
                raise InvalidInput(f"The attachment to {dest!r} needs at least one source.")
            out_sources = []
            for src in sources:
                sname = src.get("source_name") if isinstance(src, dict) else None
                if sname != START and sname not in nodes:
                    raise InvalidInput(f"Attachment source {sname!r} is not an object of this version (or {START}).")
                if sname == dest:
                    raise InvalidInput(f"Object {dest!r} cannot feed itself.")
                origin = start if sname == START else nodes[sname]
                mapping = src.get("mapping") or []
                if not isinstance(mapping, list):
                    raise InvalidInput(f"'mapping' from {sname!r} to {dest!r} must be a list.")
                if (origin["out_type"] == "plain") != (target["in_type"] == "plain"):
                    raise InvalidInput(f"{sname!r} and {dest!r} do not match: one is plain, the other structured.")
                out_map = []
                for m in mapping:
                    sf = m.get("source_field_name") if isinstance(m, dict) else None
                    df = m.get("destination_field_name") if isinstance(m, dict) else None
                    if sf not in origin["out"]:
                        raise InvalidInput(f"{sname!r} has no output field {sf!r} (mapping to {dest!r}).")
                    if df not in target["in"]:
                        raise InvalidInput(f"{dest!r} has no input field {df!r} (mapping from {sname!r}).")
                    if origin["out"][sf] != target["in"][df]:
                        raise InvalidInput(
                            f"Field {sname}.{sf} ({origin['out'][sf]}) cannot feed {dest}.{df} ({target['in'][df]})."
                        )
                    out_map.append({"source_field_name": sf, "destination_field_name": df})
                out_sources.append({"source_name": sname, "mapping": out_map})
            mapped = {m["destination_field_name"] for src in out_sources for m in src["mapping"]}
            if target["in_type"] == "structured" and set(target["in"]) - mapped:
                missing = ", ".join(sorted(set(target["in"]) - mapped))
                raise InvalidInput(f"Input field(s) {missing} of {dest!r} are fed by no source.")
            fed[dest] = [src["source_name"] for src in out_sources]
            out_attachments.append(
                {
                    "id": att.get("id") if isinstance(att.get("id"), str) else new_uuid(),
                    "destination_name": dest,
                    "sources": out_sources,
                }
            )
        if out_objects or out_attachments:
            unfed = [o["name"] for o in out_objects if o["name"] not in fed]
            if unfed:
                raise InvalidInput(f"Object(s) {', '.join(unfed)} have no attachment feeding them.")
            if END not in fed:
                raise InvalidInput(f"Nothing feeds {END}: attach the object(s) whose output is the pipeline's output.")
            self._order(fed)  # raises on cycles
        return out_objects, out_attachments

    @staticmethod
    def _order(fed: dict[str, list[str]]) -> list[str]:
        order: list[str] = []
        state: dict[str, int] = {}

        def visit(node: str, path: tuple[str, ...]) -> None:
            if node == START:
                return
            if state.get(node) == 2:
                return
            if state.get(node) == 1:
                raise InvalidInput(f"The pipeline has a cycle: {' -> '.join((*path, node))}.")
            state[node] = 1
            for src in fed.get(node, []):
                visit(src, (*path, node))
            state[node] = 2
            order.append(node)

        visit(END, ())
        for node in fed:
            visit(node, ())
        return order
