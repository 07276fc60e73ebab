"""``client.pipelines``: pipelines of a project (deployments chained as a graph), their versions and runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from modelharbor.sdk.deployments import FieldSpec, io_body, predict_request, project_path
from modelharbor.sdk.wire import Pipeline, PipelinePrediction, PipelineVersion

if TYPE_CHECKING:
    from modelharbor.sdk.client import Client


class Pipelines:
    """``/api/v1/projects/{project}/pipelines``."""

    def __init__(self, client: Client):
        self._client = client
        self._t = client._transport

    def list(self, project: str) -> list[Pipeline]:
        return self._t.call(list[Pipeline], "GET", project_path(project, "pipelines"))

    def get(self, project: str, pipeline: str) -> Pipeline:
        return self._t.call(Pipeline, "GET", project_path(project, "pipelines", pipeline))

    def create(
        self,
        project: str,
        name: str,
        *,
        input_fields: FieldSpec = None,
        output_fields: FieldSpec = None,
        plain: bool = False,
        description: str | None = None,
    ) -> Pipeline:
        body = io_body(name, input_fields, output_fields, plain, description=description)
        return self._t.call(Pipeline, "POST", project_path(project, "pipelines"), json=body)

    def delete(self, project: str, pipeline: str) -> None:
        """Delete a pipeline with its versions."""
        self._t.request("DELETE", project_path(project, "pipelines", pipeline))

    def versions(self, project: str, pipeline: str) -> list[PipelineVersion]:
        return self._t.call(list[PipelineVersion], "GET", project_path(project, "pipelines", pipeline, "versions"))

    def version(self, project: str, pipeline: str, version: str) -> PipelineVersion:
        url = project_path(project, "pipelines", pipeline, "versions", version)
        return self._t.call(PipelineVersion, "GET", url)

    def create_version(
        self,
        project: str,
        pipeline: str,
        version: str,
        *,
        objects: list[dict[str, Any]],
        attachments: list[dict[str, Any]],
        **fields: Any,
    ) -> PipelineVersion:
        """``objects``: ``[{name, reference_name, version?}]``; ``attachments``: ``[{destination_name, sources:
        [{source_name, mapping: [{source_field_name, destination_field_name}]}]}]``."""
        body = {"version": version, "objects": objects, "attachments": attachments, **fields}
        url = project_path(project, "pipelines", pipeline, "versions")
        return self._t.call(PipelineVersion, "POST", url, json=body)

    def delete_version(self, project: str, pipeline: str, version: str) -> None:
        self._t.request("DELETE", project_path(project, "pipelines", pipeline, "versions", version))

    def predict(
        self,
        project: str,
        pipeline: str,
        data: Any,
        *,
        version: str | None = None,
        timeout: int | None = None,
        plain: bool | None = None,
    ) -> PipelinePrediction:
        """Run a pipeline: each object's request (``steps``) and the result, or ``status: "failed"`` naming the
        object that failed."""
        url = project_path(project, "pipelines", pipeline, "predict")
        read = httpx.Timeout(self._t.timeout, read=float(timeout or 300) + 30.0)
        kw = predict_request(url, data, version, timeout, plain)
        return self._t.call(PipelinePrediction, "POST", url, timeout=read, **kw)
