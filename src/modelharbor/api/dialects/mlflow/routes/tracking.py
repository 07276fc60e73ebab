"""MLflow tracking routes (``/api/2.0/mlflow/...``): experiments, runs, metrics, logged models.

Shapes follow the protobuf JSON of the real client (mlflow/protos/service.proto); the client is the spec. Each
route takes its parameters (the query string merged with the JSON body, read by the :data:`ArgsDep` dependency on
the event loop) into the core's typed arguments (inputs.py, in the order tracking checks them), makes one
:mod:`modelharbor.core.tracking` call in FastAPI's threadpool and maps the answer.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from modelharbor.api.dialect import ServicesDep
from modelharbor.api.dialects.mlflow import PrincipalDep, filters
from modelharbor.api.dialects.mlflow.inputs import (
    batch_in,
    experiment_id_in,
    experiment_name_in,
    key_values_in,
    metric_in,
    optional_text_in,
    run_status_in,
    tag_in,
    text_of,
    view_type,
)
from modelharbor.api.dialects.mlflow.mapping import (
    MALFORMED_REQUEST,
    MODEL_STATUS_IN,
    experiment_json,
    metric_json,
    model_json,
    paged,
    run_json,
)
from modelharbor.api.params import json_object
from modelharbor.core.tracking import ACTIVE, DELETED
from modelharbor.domain.errors import InvalidInput
from modelharbor.domain.query import Query

router = APIRouter()


# --- request helpers ---------------------------------------------------------------------------


async def _args(request: Request) -> dict[str, Any]:
    """Query parameters (GETs) merged with the JSON body (POSTs)."""
    args: dict[str, Any] = dict(request.query_params)
    if request.method != "GET" or request.headers.get("content-length", "0") not in ("", "0"):
        args.update(await json_object(request, required=False, code=MALFORMED_REQUEST))
    return args


# a route's parameters; declared after the principal, so missing credentials answer 401 before a bad body
ArgsDep = Annotated[dict[str, Any], Depends(_args)]


def _req(args: dict[str, Any], *names: str) -> Any:
    for name in names:
        value = args.get(name)
        if value not in (None, ""):
            return value
    raise InvalidInput(f"missing value for required parameter '{names[0]}'")


def _int(value: Any, name: str) -> int | None:
    """An integer parameter, None when absent (the core checks its range, with MLflow's messages)."""
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


# --- experiments -------------------------------------------------------------------------------


@router.post("/experiments/create")
def create_experiment(principal: PrincipalDep, services: ServicesDep, args: ArgsDep):
    name, tags = _req(args, "name"), key_values_in(args.get("tags"))
    exp = services.tracking.create_experiment(principal, experiment_name_in(name), tags)
    return {"experiment_id": exp.id}


@router.get("/experiments/get")
def get_experiment(principal: PrincipalDep, services: ServicesDep, args: ArgsDep):
    exp = services.tracking.get_experiment(principal, experiment_id_in(_req(args, "experiment_id")))
    return {"experiment": experiment_json(exp)}


@router.get("/experiments/get-by-name")
def get_experiment_by_name(principal: PrincipalDep, services: ServicesDep, args: ArgsDep):
    name = experiment_name_in(_req(args, "experiment_name"))
    exp = services.tracking.get_experiment_by_name(principal, name)
    return {"experiment": experiment_json(exp)}


@router.api_route("/experiments/search", methods=["GET", "POST"])
def search_experiments(principal: PrincipalDep, services: ServicesDep, args: ArgsDep):
    page = services.tracking.search_experiments(
        principal,
        filters.query(args.get("filter"), _list(args.get("order_by"))),
        view_type=view_type(args.get("view_type")),
        max_results=_int(args.get("max_results"), "max_results"),
        offset=filters.decode_token(args.get("page_token")),
    )
    return paged(page, "experiments", experiment_json)


@router.post("/experiments/update")
def update_experiment(principal: PrincipalDep, services: ServicesDep, args: ArgsDep):
    if args.get("new_name"):
        experiment_id = experiment_id_in(_req(args, "experiment_id"))
        services.tracking.rename_experiment(principal, experiment_id, experiment_name_in(args["new_name"]))
    return {}


@router.post("/experiments/delete")
def delete_experiment(principal: PrincipalDep, services: ServicesDep, args: ArgsDep):
    services.tracking.set_experiment_lifecycle(principal, experiment_id_in(_req(args, "experiment_id")), DELETED)
    return {}


@router.post("/experiments/restore")
def restore_experiment(principal: PrincipalDep, services: ServicesDep, args: ArgsDep):
    services.tracking.set_experiment_lifecycle(principal, experiment_id_in(_req(args, "experiment_id")), ACTIVE)
    return {}


@router.post("/experiments/set-experiment-tag")
def set_experiment_tag(principal: PrincipalDep, services: ServicesDep, args: ArgsDep):
    raw_id, key, value = _req(args, "experiment_id"), _req(args, "key"), args.get("value", "")
    experiment_id, tag = experiment_id_in(raw_id), tag_in({"key": key, "value": value}, "tag")
    services.tracking.set_experiment_tag(principal, experiment_id, tag.key, tag.value)
    return {}


@router.post("/experiments/delete-experiment-tag")
def delete_experiment_tag(principal: PrincipalDep, services: ServicesDep, args: ArgsDep):
    raw_id, key = _req(args, "experiment_id"), _req(args, "key")
    services.tracking.delete_experiment_tag(principal, experiment_id_in(raw_id), text_of(key))
    return {}


# --- runs --------------------------------------------------------------------------------------


@router.post("/runs/create")
def create_run(principal: PrincipalDep, services: ServicesDep, args: ArgsDep):
    raw_id, start_time, tags = (
        args.get("experiment_id") or "0",
        _int(args.get("start_time"), "start_time"),
        key_values_in(args.get("tags")),
    )
    run = services.tracking.create_run(
        principal,
        experiment_id_in(raw_id),
        user_id=optional_text_in(args.get("user_id")),
        start_time=start_time,
        tags=tags,
        run_name=optional_text_in(args.get("run_name")),
    )
    return {"run": run_json(run)}


@router.get("/runs/get")
def get_run(principal: PrincipalDep, services: ServicesDep, args: ArgsDep):
    return {"run": run_json(services.tracking.get_run(principal, _run_id(args)))}


@router.post("/runs/update")
def update_run(principal: PrincipalDep, services: ServicesDep, args: ArgsDep):
    run_id, end_time = _run_id(args), _int(args.get("end_time"), "end_time")
    status, run_name = run_status_in(args.get("status")), optional_text_in(args.get("run_name"))
    run = services.tracking.update_run(principal, run_id, status=status, end_time=end_time, run_name=run_name)
    return {"run_info": run_json(run)["info"]}


@router.post("/runs/delete")
def delete_run(principal: PrincipalDep, services: ServicesDep, args: ArgsDep):
    services.tracking.set_run_lifecycle(principal, _run_id(args), DELETED)
    return {}


@router.post("/runs/restore")
def restore_run(principal: PrincipalDep, services: ServicesDep, args: ArgsDep):
    services.tracking.set_run_lifecycle(principal, _run_id(args), ACTIVE)
    return {}


@router.api_route("/runs/search", methods=["GET", "POST"])
def search_runs(principal: PrincipalDep, services: ServicesDep, args: ArgsDep):
    page = services.tracking.search_runs(
        principal,
        [str(e) for e in _list(args.get("experiment_ids"))],
        filters.query(args.get("filter"), _list(args.get("order_by"))),
        run_view_type=view_type(args.get("run_view_type")),
        max_results=_int(args.get("max_results"), "max_results"),
        offset=filters.decode_token(args.get("page_token")),
    )
    return paged(page, "runs", run_json)


@router.post("/runs/log-metric")
def log_metric(principal: PrincipalDep, services: ServicesDep, args: ArgsDep):
    if "value" not in args:
        raise InvalidInput("missing value for required parameter 'value'")
    raw = {
        name: args.get(name) for name in ("value", "timestamp", "step", "model_id", "dataset_name", "dataset_digest")
    }
    run_id, key = _run_id(args), _req(args, "key")
    m = metric_in(raw | {"key": key})
    services.tracking.log_metric(
        principal,
        run_id,
        m.key,
        m.value,
        m.timestamp,
        m.step,
        model_id=m.model_id,
        dataset_name=m.dataset_name,
        dataset_digest=m.dataset_digest,
    )
    return {}


@router.post("/runs/log-parameter")
def log_param(principal: PrincipalDep, services: ServicesDep, args: ArgsDep):
    run_id, raw = _run_id(args), {"key": _req(args, "key"), "value": args.get("value", "")}
    param = tag_in(raw, "param")
    services.tracking.log_param(principal, run_id, param.key, param.value)
    return {}


@router.post("/runs/set-tag")
def set_tag(principal: PrincipalDep, services: ServicesDep, args: ArgsDep):
    run_id, raw = _run_id(args), {"key": _req(args, "key"), "value": args.get("value", "")}
    tag = tag_in(raw, "tag")
    services.tracking.set_tag(principal, run_id, tag.key, tag.value)
    return {}


@router.post("/runs/delete-tag")
def delete_tag(principal: PrincipalDep, services: ServicesDep, args: ArgsDep):
    services.tracking.delete_tag(principal, _run_id(args), text_of(_req(args, "key")))
    return {}


@router.post("/runs/log-batch")
def log_batch(principal: PrincipalDep, services: ServicesDep, args: ArgsDep):
    run_id = _run_id(args)
    metrics, params, tags = batch_in(_list(args.get("metrics")), _list(args.get("params")), _list(args.get("tags")))
    services.tracking.log_batch(principal, run_id, metrics=metrics, params=params, tags=tags)
    return {}


@router.post("/runs/log-model")
def log_model(principal: PrincipalDep, services: ServicesDep, args: ArgsDep):
    """MLflow 2's model-history tag: accepted and ignored (MLflow 3 records logged models instead)."""
    services.tracking.get_run(principal, _run_id(args))
    return {}


@router.post("/runs/log-inputs")
def log_inputs(principal: PrincipalDep, services: ServicesDep, args: ArgsDep):
    services.tracking.log_inputs(
        principal,
        _run_id(args),
        _list(args.get("datasets")),
        _list(args.get("models")),
    )
    return {}


@router.post("/runs/outputs")
def log_outputs(principal: PrincipalDep, services: ServicesDep, args: ArgsDep):
    services.tracking.log_outputs(principal, _run_id(args), _list(args.get("models")))
    return {}


@router.get("/metrics/get-history")
def metric_history(principal: PrincipalDep, services: ServicesDep, args: ArgsDep):
    page = services.tracking.metric_history(
        principal,
        _run_id(args),
        text_of(_req(args, "metric_key")),
        max_results=_int(args.get("max_results"), "max_results"),
        offset=filters.decode_token(args.get("page_token")),
    )
    return paged(page, "metrics", metric_json)


# --- logged models -----------------------------------------------------------------------------


@router.post("/logged-models")
def create_logged_model(principal: PrincipalDep, services: ServicesDep, args: ArgsDep):
    raw_id, params, tags = (
        _req(args, "experiment_id"),
        key_values_in(args.get("params")),
        key_values_in(args.get("tags")),
    )
    model = services.tracking.create_logged_model(
        principal,
        experiment_id_in(raw_id),
        name=optional_text_in(args.get("name")),
        model_type=optional_text_in(args.get("model_type")),
        source_run_id=optional_text_in(args.get("source_run_id")),
        params=params,
        tags=tags,
    )
    return {"model": model_json(model)}


@router.post("/logged-models/search")
def search_logged_models(principal: PrincipalDep, services: ServicesDep, args: ArgsDep):
    page = services.tracking.search_logged_models(
        principal,
        [str(e) for e in _list(args.get("experiment_ids"))],
        Query(filters.parse_filter(args.get("filter")), filters.parse_model_order(args.get("order_by"))),
        max_results=_int(args.get("max_results"), "max_results"),
        offset=filters.decode_token(args.get("page_token")),
        datasets=filters.parse_datasets(args.get("datasets")),
    )
    return paged(page, "models", model_json)


@router.get("/logged-models/{model_id}")
def get_logged_model(model_id: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    allow_deleted = request.query_params.get("allow_deleted", "").lower() == "true"
    model = services.tracking.get_logged_model(principal, model_id, allow_deleted=allow_deleted)
    return {"model": model_json(model)}


@router.patch("/logged-models/{model_id}")
def finalize_logged_model(model_id: str, principal: PrincipalDep, services: ServicesDep, args: ArgsDep):
    status = MODEL_STATUS_IN.get(str(_req(args, "status")))
    if status is None:
        raise InvalidInput(f"unknown logged model status {args.get('status')!r}")
    model = services.tracking.finalize_logged_model(principal, model_id, status)
    return {"model": model_json(model)}


@router.delete("/logged-models/{model_id}")
def delete_logged_model(model_id: str, principal: PrincipalDep, services: ServicesDep):
    services.tracking.delete_logged_model(principal, model_id)
    return {}


@router.patch("/logged-models/{model_id}/tags")
def set_logged_model_tags(model_id: str, principal: PrincipalDep, services: ServicesDep, args: ArgsDep):
    services.tracking.set_logged_model_tags(principal, model_id, key_values_in(args.get("tags")))
    return {}


@router.delete("/logged-models/{model_id}/tags/{tag_key:path}")
def delete_logged_model_tag(model_id: str, tag_key: str, principal: PrincipalDep, services: ServicesDep):
    services.tracking.delete_logged_model_tag(principal, model_id, tag_key)
    return {}


@router.post("/logged-models/{model_id}/params")
def log_logged_model_params(model_id: str, principal: PrincipalDep, services: ServicesDep, args: ArgsDep):
    services.tracking.log_logged_model_params(principal, model_id, key_values_in(args.get("params")))
    return {}
