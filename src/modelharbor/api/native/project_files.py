"""Native routes for a project's versioned files: the log of commits, a listing at a commit, a streamed upload (a
new commit) and a download (ranges, HEAD). One core call each (``ProjectFileService``); docs/project-files.md."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, Field

from modelharbor.api.common import body_stream, file_response
from modelharbor.api.native.deps import PrincipalDep, ServicesDep
from modelharbor.core.project_files import Commit, FileEntry, Listing

router = APIRouter(prefix="/projects", tags=["project files"])
COMMIT_HELP = "A commit id (40 hex digits); the newest commit when omitted."
PATH_HELP = "A path relative to the project's root ('a/b.txt'); no '..', no leading '/'."


class CommitOut(BaseModel):
    id: str = Field(description="40 hex digits.")
    number: int = Field(description="1 for the first commit; the newest has the highest.")
    parent_id: str | None
    path: str = Field(description="The file the commit wrote.")
    author_id: str | None
    author: str | None
    created_at: datetime


class EntryOut(BaseModel):
    path: str
    name: str
    is_dir: bool
    key: str = Field(description="A file's blob key (the first 40 hex digits of its SHA-256); a directory's node.")
    size: int = Field(description="Bytes (a directory: the bytes below it).")
    modified_at: datetime


class ListingOut(BaseModel):
    commit: CommitOut | None = Field(description="The commit listed; null when the project has no files yet.")
    path: str
    entries: list[EntryOut]


class CommitList(BaseModel):
    items: list[CommitOut]
    limit: int
    offset: int


def commit_out(c: Commit) -> CommitOut:
    return CommitOut(
        id=c.id,
        number=c.number,
        parent_id=c.parent_id,
        path=c.path,
        author_id=c.author_id,
        author=c.author,
        created_at=c.created_at,
    )


def entry_out(e: FileEntry) -> EntryOut:
    modified = datetime.fromtimestamp(e.modified_ms / 1000, UTC)
    return EntryOut(path=e.path, name=e.name, is_dir=e.is_dir, key=e.key, size=e.size, modified_at=modified)


def listing_out(listing: Listing) -> ListingOut:
    return ListingOut(
        commit=commit_out(listing.commit) if listing.commit else None,
        path=listing.path,
        entries=[entry_out(e) for e in listing.entries],
    )


@router.get("/{project_id}/commits", response_model=CommitList, summary="The project's commits, newest first")
def list_commits(
    project_id: str,
    principal: PrincipalDep,
    services: ServicesDep,
    limit: int = Query(100, ge=1, le=10_000),
    offset: int = Query(0, ge=0, le=2**31 - 1),
):
    items = services.project_files.commits(principal, project_id, limit=limit, offset=offset)
    return CommitList(items=[commit_out(c) for c in items], limit=limit, offset=offset)


@router.get("/{project_id}/files", response_model=ListingOut, summary="The files under a path at a commit")
def list_files(
    project_id: str,
    principal: PrincipalDep,
    services: ServicesDep,
    path: str = Query("", max_length=4096, description=PATH_HELP + " The root when omitted."),
    commit: str | None = Query(None, max_length=64, description=COMMIT_HELP),
):
    """The files and directories directly under ``path`` (the file itself when ``path`` names one)."""
    return listing_out(services.project_files.list(principal, project_id, commit, path))


@router.put(
    "/{project_id}/files",
    status_code=status.HTTP_201_CREATED,
    response_model=CommitOut,
    summary="Write a file (the raw body, streamed) as a new commit",
    openapi_extra={
        "requestBody": {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}
    },
)
async def upload_file(
    project_id: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
    path: str = Query(..., min_length=1, max_length=4096, description=PATH_HELP),
):
    """Any size up to MAX_UPLOAD_SIZE, in flat memory. Writing a file's current content again is refused (an empty
    commit); a body cut off leaves no commit and no bytes."""
    commit = await services.project_files.write(principal, project_id, path, body_stream(request))
    return commit_out(commit)


@router.get(
    "/{project_id}/files/content",
    response_class=Response,
    operation_id="get_project_file_content",
    responses={200: {"content": {"application/octet-stream": {}}}, 206: {"description": "A range"}},
    summary="A file's bytes at a commit",
)
@router.head(
    "/{project_id}/files/content",
    response_class=Response,
    operation_id="head_project_file_content",
    responses={206: {"description": "A range"}},
    summary="A file's size and hash at a commit",
)
async def file_content(
    project_id: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
    path: str = Query(..., min_length=1, max_length=4096, description=PATH_HELP),
    commit: str | None = Query(None, max_length=64, description=COMMIT_HELP),
):
    """Honours ``Range`` (206)."""
    opened = await services.project_files.open(principal, project_id, commit, path, request.headers.get("range"))
    return file_response(
        opened.record, opened.range, opened.stream, head=request.method == "HEAD", download_name=opened.entry.name
    )
