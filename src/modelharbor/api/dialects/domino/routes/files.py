"""Domino's versioned project files: the legacy ``/v1/projects/{owner}/{project}/…`` routes the ``dominodatalab``
client calls (commits, files at a commit, blobs, upload) and the public ``/api/projects/{v1,beta}/projects/{id}/files/
{commitId}/{path}/content`` (ops 129–130). Each route makes one core call (``ProjectFileService``); bytes stream
both ways. Paths keep their slashes (the client does not encode them; ``files/<sha>//`` is the root).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from modelharbor.api.common import body_stream, file_response, json_answer
from modelharbor.api.dialect import ServicesDep
from modelharbor.api.dialects.domino import PrincipalDep, mapping

legacy = APIRouter()  # mounted at /v1/projects
public = APIRouter()  # mounted at /api/projects
MAX_COMMITS = 10_000
RAW_BODY = {
    "requestBody": {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}
}
BYTES = {200: {"content": {"application/octet-stream": {}}}, 206: {"description": "A range"}}


@legacy.get("/{owner}/{project}/commits")
def commits(owner: str, project: str, principal: PrincipalDep, services: ServicesDep):
    """The project's commit ids, newest first (a JSON array of strings, as the client reads it)."""
    found = services.project_files.commits(principal, (owner, project), limit=MAX_COMMITS)
    return json_answer([c.id for c in found])


@legacy.get("/{owner}/{project}/files/{commit_id}")
@legacy.get("/{owner}/{project}/files/{commit_id}/{path:path}")
def files(owner: str, project: str, commit_id: str, principal: PrincipalDep, services: ServicesDep, path: str = ""):
    """The files and directories under ``path`` at a commit: ``{"data": [{path, key, size, lastModified, …}]}``."""
    listing = services.project_files.list(principal, (owner, project), commit_id, "/" + path)
    return json_answer(mapping.project_files(listing))


@legacy.get("/{owner}/{project}/blobs/{key}", response_class=JSONResponse, responses=BYTES)
async def blob(owner: str, project: str, key: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    """A blob's bytes by the ``key`` a listing gives (ranges honoured)."""
    opened = await services.project_files.open_blob(principal, (owner, project), key, request.headers.get("range"))
    return file_response(opened.record, opened.range, opened.stream, download_name=opened.entry.name)


@legacy.put("/{owner}/{project}/{path:path}", status_code=201, openapi_extra=RAW_BODY)
async def upload(owner: str, project: str, path: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    """Write the file ``path`` with the raw body (streamed, any size) as a new commit; 201 ``{path, commitId}``."""
    commit = await services.project_files.write(
        principal, (owner, project), "/" + path, body_stream(request), url_path=True
    )
    return JSONResponse(mapping.uploaded_file(commit.path, commit), status_code=201)


@public.get("/v1/projects/{project_id}/files/{commit_id}/{path:path}/content", responses=BYTES)
@public.get("/beta/projects/{project_id}/files/{commit_id}/{path:path}/content", responses=BYTES)
async def content(
    project_id: str, commit_id: str, path: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    """A file's bytes at a commit (ops 130 and the deprecated 129; ranges honoured)."""
    opened = await services.project_files.open(
        principal, project_id, commit_id, "/" + path, request.headers.get("range")
    )
    return file_response(opened.record, opened.range, opened.stream, download_name=opened.entry.name)
