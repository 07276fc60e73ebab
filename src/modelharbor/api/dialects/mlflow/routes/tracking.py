"""MLflow tracking routes (``/api/2.0/mlflow/...``): experiments, runs, metrics, logged models.

Shapes follow the protobuf JSON of the real client (mlflow/protos/service.proto); the client is the spec.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request

from modelharbor.api.dialects.mlflow import filters
from modelharbor.api.dialects.mlflow.common import PrincipalDep, ServicesDep, json_body, paged
from modelharbor.core.tracking import ACTIVE, DELETED, Experiment, LoggedModel, Metric, Run
from modelharbor.core.tracking_metrics import finite
from modelharbor.domain.errors import InvalidInput
from modelharbor.domain.query import Query

router = APIRouter()

MODEL_STATUS_OUT = {
    "PENDING": "LOGGED_MODEL_PENDING",
    "READY": "LOGGED_MODEL_READY",
    "FAILED": "LOGGED_MODEL_UPLOAD_FAILED",
}
MODEL_STATUS_IN = {v: k for k, v in MODEL_STATUS_OUT.items()} | {
    "PENDING": "PENDING",
    "READY": "READY",
    "FAILED": "FAILED",
}
MODEL_STATUS_IN |= {"1": "PENDING", "2": "READY", "3": "FAILED"}


# --- rendering ---------------------------------------------------------------------------------


def _kv(d: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in sorted(d.items())]


def experiment_json(e: Experiment) -> dict[str, Any]:
    return {
        "experiment_id": e.id,
        "name": e.name,
        "artifact_location": e.artifact_location,
        "lifecycle_stage": e.lifecycle_stage,
        "last_update_time": e.last_update_time,
        "creation_time": e.creation_time,
        "tags": _kv(e.tags),
    }


def metric_json(m: Metric) -> dict[str, Any]:
    """MLflow's Metric; ``model_id``, ``run_id`` and the dataset only where known (history rows: the model given)."""
    out: dict[str, Any] = {"key": m.key, "value": finite(m.value), "timestamp": m.timestamp, "step": m.step}
    for name in ("model_id", "run_id", "dataset_name", "dataset_digest"):
        if (value := getattr(m, name)) is not None:
            out[name] = value
    return out


def run_json(r: Run) -> dict[str, Any]:
    info = {
        "run_id": r.id,
        "run_uuid": r.id,
        "run_name": r.name,
        "experiment_id": r.experiment_id,
        "user_id": r.user_id,
        "status": r.status,
        "start_time": r.start_time,
        "artifact_uri": r.artifact_uri,
        "lifecycle_stage": r.lifecycle_stage,
    }
    if r.end_time is not None:
        info["end_time"] = r.end_time
    return {
        "info": info,
        "data": {"metrics": [metric_json(m) for m in r.metrics], "params": _kv(r.params), "tags": _kv(r.tags)},
        "inputs": {
            "dataset_inputs": r.inputs.get("dataset_inputs", []),
            "model_inputs": r.inputs.get("model_inputs", []),
        },
        "outputs": {"model_outputs": r.outputs.get("model_outputs", [])},
    }


def model_json(m: LoggedModel) -> dict[str, Any]:
    info: dict[str, Any] = {
        "model_id": m.id,
        "experiment_id": m.experiment_id,
        "name": m.name,
        "creation_timestamp_ms": m.creation_timestamp_ms,
        "last_updated_timestamp_ms": m.last_updated_timestamp_ms,
        "artifact_uri": m.artifact_uri,
        "status": MODEL_STATUS_OUT.get(m.status, "LOGGED_MODEL_STATUS_UNSPECIFIED"),
        "tags": _kv(m.tags),
    }
    for key, value in (
        ("model_type", m.model_type),
        ("source_run_id", m.source_run_id),
        ("status_message", m.status_message),
    ):
        if value:
            info[key] = value
    return {"info": info, "data": {"params": _kv(m.params), "metrics": [metric_json(x) for x in m.metrics]}}


# --- request helpers ---------------------------------------------------------------------------


async def _args(request: Request) -> dict[str, Any]:
    """Query parameters (GETs) merged with the JSON body (POSTs)."""
    args: dict[str, Any] = dict(request.query_params)
    if request.method != "GET" or request.headers.get("content-length", "0") not in ("", "0"):
        args.update(await json_body(request))
    return args


def _req(args: dict[str, Any], *names: str) -> Any:
    for name in names:
        value = args.get(name)
        if value not in (None, ""):
            return value
    raise InvalidInput(f"missing value for required parameter '{names[0]}'")


def _tags(items: Any) -> dict[str, str]:
    if items in (None, ""):
        return {}
    if not isinstance(items, list) or not all(isinstance(t, dict) for t in items):
        raise InvalidInput("tags must be a list of {key, value} objects")
    return {str(t.get("key")): t.get("value", "") for t in items}


def _int(value: Any, name: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be an integer, got {value!r}") from None


def _list(value: Any) -> list:
    if value in (None, ""):
        return []
    return value if isinstance(value, list) else [value]


def _run_id(args: dict[str, Any]) -> str:
    return str(_req(args, "run_id", "run_uuid"))


async def _call(fn, *a, **kw):
    return await asyncio.to_thread(fn, *a, **kw)


# --- experiments -------------------------------------------------------------------------------


@router.post("/experiments/create")
async def create_experiment(request: Request, principal: PrincipalDep, services: ServicesDep):
    args = await _args(request)
    exp = await _call(services.tracking.create_experiment, principal, _req(args, "name"), _tags(args.get("tags")))
    return {"experiment_id": exp.id}


@router.get("/experiments/get")
async def get_experiment(request: Request, principal: PrincipalDep, services: ServicesDep):
    args = await _args(request)
    exp = await _call(services.tracking.get_experiment, principal, _req(args, "experiment_id"))
    return {"experiment": experiment_json(exp)}


@router.get("/experiments/get-by-name")
async def get_experiment_by_name(request: Request, principal: PrincipalDep, services: ServicesDep):
    args = await _args(request)
    exp = await _call(services.tracking.get_experiment_by_name, principal, _req(args, "experiment_name"))
    return {"experiment": experiment_json(exp)}


@router.api_route("/experiments/search", methods=["GET", "POST"])
async def search_experiments(request: Request, principal: PrincipalDep, services: ServicesDep):
    args = await _args(request)
    page = await _call(
        services.tracking.search_experiments,
        principal,
        filters.query(args.get("filter"), _list(args.get("order_by"))),
        view_type=args.get("view_type"),
        max_results=_int(args.get("max_results"), "max_results"),
        offset=filters.decode_token(args.get("page_token")),
    )
    return paged(page, "experiments", experiment_json)


@router.post("/experiments/update")
async def update_experiment(request: Request, principal: PrincipalDep, services: ServicesDep):
    args = await _args(request)
    if args.get("new_name"):
        await _call(services.tracking.rename_experiment, principal, _req(args, "experiment_id"), args["new_name"])
    return {}


@router.post("/experiments/delete")
async def delete_experiment(request: Request, principal: PrincipalDep, services: ServicesDep):
    args = await _args(request)
    await _call(services.tracking.set_experiment_lifecycle, principal, _req(args, "experiment_id"), DELETED)
    return {}


@router.post("/experiments/restore")
async def restore_experiment(request: Request, principal: PrincipalDep, services: ServicesDep):
    args = await _args(request)
    await _call(services.tracking.set_experiment_lifecycle, principal, _req(args, "experiment_id"), ACTIVE)
    return {}


@router.post("/experiments/set-experiment-tag")
async def set_experiment_tag(request: Request, principal: PrincipalDep, services: ServicesDep):
    args = await _args(request)
    await _call(
        services.tracking.set_experiment_tag,
        principal,
        _req(args, "experiment_id"),
        _req(args, "key"),
        args.get("value", ""),
    )
    return {}


@router.post("/experiments/delete-experiment-tag")
async def delete_experiment_tag(request: Request, principal: PrincipalDep, services: ServicesDep):
    args = await _args(request)
    await _call(services.tracking.delete_experiment_tag, principal, _req(args, "experiment_id"), _req(args, "key"))
    return {}


# --- runs --------------------------------------------------------------------------------------


@router.post("/runs/create")
async def create_run(request: Request, principal: PrincipalDep, services: ServicesDep):
    args = await _args(request)
    run = await _call(
        services.tracking.create_run,
        principal,
        args.get("experiment_id") or "0",
        user_id=args.get("user_id"),
        start_time=_int(args.get("start_time"), "start_time"),
        tags=_tags(args.get("tags")),
        run_name=args.get("run_name"),
    )
    return {"run": run_json(run)}


@router.get("/runs/get")
async def get_run(request: Request, principal: PrincipalDep, services: ServicesDep):
    args = await _args(request)
    return {"run": run_json(await _call(services.tracking.get_run, principal, _run_id(args)))}


@router.post("/runs/update")
async def update_run(request: Request, principal: PrincipalDep, services: ServicesDep):
    args = await _args(request)
    run = await _call(
        services.tracking.update_run,
        principal,
        _run_id(args),
        status=args.get("status"),
        end_time=_int(args.get("end_time"), "end_time"),
        run_name=args.get("run_name"),
    )
    return {"run_info": run_json(run)["info"]}


@router.post("/runs/delete")
async def delete_run(request: Request, principal: PrincipalDep, services: ServicesDep):
    args = await _args(request)
    await _call(services.tracking.set_run_lifecycle, principal, _run_id(args), DELETED)
    return {}


@router.post("/runs/restore")
async def restore_run(request: Request, principal: PrincipalDep, services: ServicesDep):
    args = await _args(request)
    await _call(services.tracking.set_run_lifecycle, principal, _run_id(args), ACTIVE)
    return {}


@router.api_route("/runs/search", methods=["GET", "POST"])
async def search_runs(request: Request, principal: PrincipalDep, services: ServicesDep):
    args = await _args(request)
    page = await _call(
        services.tracking.search_runs,
        principal,
        _list(args.get("experiment_ids")),
        filters.query(args.get("filter"), _list(args.get("order_by"))),
        run_view_type=args.get("run_view_type"),
        max_results=_int(args.get("max_results"), "max_results"),
        offset=filters.decode_token(args.get("page_token")),
    )
    return paged(page, "runs", run_json)


@router.post("/runs/log-metric")
async def log_metric(request: Request, principal: PrincipalDep, services: ServicesDep):
    args = await _args(request)
    if "value" not in args:
        raise InvalidInput("missing value for required parameter 'value'")
    await _call(
        services.tracking.log_metric,
        principal,
        _run_id(args),
        _req(args, "key"),
        args["value"],
        args.get("timestamp"),
        args.get("step"),
        model_id=args.get("model_id"),
        dataset_name=args.get("dataset_name"),
        dataset_digest=args.get("dataset_digest"),
    )
    return {}


@router.post("/runs/log-parameter")
async def log_param(request: Request, principal: PrincipalDep, services: ServicesDep):
    args = await _args(request)
    await _call(services.tracking.log_param, principal, _run_id(args), _req(args, "key"), args.get("value", ""))
    return {}


@router.post("/runs/set-tag")
async def set_tag(request: Request, principal: PrincipalDep, services: ServicesDep):
    args = await _args(request)
    await _call(services.tracking.set_tag, principal, _run_id(args), _req(args, "key"), args.get("value", ""))
    return {}


@router.post("/runs/delete-tag")
async def delete_tag(request: Request, principal: PrincipalDep, services: ServicesDep):
    args = await _args(request)
    await _call(services.tracking.delete_tag, principal, _run_id(args), _req(args, "key"))
    return {}


@router.post("/runs/log-batch")
async def log_batch(request: Request, principal: PrincipalDep, services: ServicesDep):
    args = await _args(request)
    await _call(
        services.tracking.log_batch,
        principal,
        _run_id(args),
        metrics=_list(args.get("metrics")),
        params=_list(args.get("params")),
        tags=_list(args.get("tags")),
    )
    return {}


@router.post("/runs/log-model")
async def log_model(request: Request, principal: PrincipalDep, services: ServicesDep):
    """MLflow 2's model-history tag: accepted and ignored (MLflow 3 records logged models instead)."""
    args = await _args(request)
    await _call(services.tracking.get_run, principal, _run_id(args))
    return {}


@router.post("/runs/log-inputs")
async def log_inputs(request: Request, principal: PrincipalDep, services: ServicesDep):
    args = await _args(request)
    await _call(
        services.tracking.log_inputs,
        principal,
        _run_id(args),
        _list(args.get("datasets")),
        _list(args.get("models")),
    )
    return {}


@router.post("/runs/outputs")
async def log_outputs(request: Request, principal: PrincipalDep, services: ServicesDep):
    args = await _args(request)
    await _call(services.tracking.log_outputs, principal, _run_id(args), _list(args.get("models")))
    return {}


@router.get("/metrics/get-history")
async def metric_history(request: Request, principal: PrincipalDep, services: ServicesDep):
    args = await _args(request)
    page = await _call(
        services.tracking.metric_history,
        principal,
        _run_id(args),
        _req(args, "metric_key"),
        max_results=_int(args.get("max_results"), "max_results"),
        offset=filters.decode_token(args.get("page_token")),
    )
    return paged(page, "metrics", metric_json)


# --- logged models -----------------------------------------------------------------------------


@router.post("/logged-models")
async def create_logged_model(request: Request, principal: PrincipalDep, services: ServicesDep):
    args = await _args(request)
    model = await _call(
        services.tracking.create_logged_model,
        principal,
        _req(args, "experiment_id"),
        name=args.get("name"),
        model_type=args.get("model_type"),
        source_run_id=args.get("source_run_id"),
        params=_tags(args.get("params")),
        tags=_tags(args.get("tags")),
    )
    return {"model": model_json(model)}


@router.post("/logged-models/search")
async def search_logged_models(request: Request, principal: PrincipalDep, services: ServicesDep):
    args = await _args(request)
    page = await _call(
        services.tracking.search_logged_models,
        principal,
        _list(args.get("experiment_ids")),
        Query(filters.parse_filter(args.get("filter")), filters.parse_model_order(args.get("order_by"))),
        max_results=_int(args.get("max_results"), "max_results"),
        offset=filters.decode_token(args.get("page_token")),
        datasets=filters.parse_datasets(args.get("datasets")),
    )
    return paged(page, "models", model_json)


@router.get("/logged-models/{model_id}")
async def get_logged_model(model_id: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    allow_deleted = request.query_params.get("allow_deleted", "").lower() == "true"
    model = await _call(services.tracking.get_logged_model, principal, model_id, allow_deleted=allow_deleted)
    return {"model": model_json(model)}


@router.patch("/logged-models/{model_id}")
async def finalize_logged_model(model_id: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    args = await _args(request)
    status = MODEL_STATUS_IN.get(str(_req(args, "status")))
    if status is None:
        raise InvalidInput(f"unknown logged model status {args.get('status')!r}")
    model = await _call(services.tracking.finalize_logged_model, principal, model_id, status)
    return {"model": model_json(model)}


@router.delete("/logged-models/{model_id}")
async def delete_logged_model(model_id: str, principal: PrincipalDep, services: ServicesDep):
    await _call(services.tracking.delete_logged_model, principal, model_id)
    return {}


@router.patch("/logged-models/{model_id}/tags")
async def set_logged_model_tags(model_id: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    args = await _args(request)
    await _call(services.tracking.set_logged_model_tags, principal, model_id, _tags(args.get("tags")))
    return {}


@router.delete("/logged-models/{model_id}/tags/{tag_key:path}")
async def delete_logged_model_tag(model_id: str, tag_key: str, principal: PrincipalDep, services: ServicesDep):
    await _call(services.tracking.delete_logged_model_tag, principal, model_id, tag_key)
    return {}


@router.post("/logged-models/{model_id}/params")
async def log_logged_model_params(model_id: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    args = await _args(request)
    await _call(services.tracking.log_logged_model_params, principal, model_id, _tags(args.get("params")))
    return {}
