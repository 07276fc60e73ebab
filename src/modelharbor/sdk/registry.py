"""``client.models``: the model registry — registered models, versions (with tags), aliases, stages, a version's
files — and registering a file or directory as a version, or downloading one, both resumable.

Names and aliases are checked before anything is sent: a bad name fails before any byte is uploaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelharbor.sdk import names
from modelharbor.sdk.errors import HarborClientError, invalid, local_file
from modelharbor.sdk.http import seg
from modelharbor.sdk.transfers import (
    Aggregate,
    Fetch,
    Progress,
    fetch_many,
    run_parallel,
    safe_relative,
)
from modelharbor.sdk.uploads import DEFAULT_CHUNK_SIZE, default_state_dir
from modelharbor.sdk.wire import ModelVersion, ModelVersionPage, RegisteredModel, RegisteredModelPage, VersionFile

if TYPE_CHECKING:
    from modelharbor.sdk.client import Client

REGISTER_CONTEXT = "registry-upload"  # files uploaded by register() until the version takes them
MAX_VERSION_FILES = 10_000  # the server's limit of files per version


@dataclass
class DownloadResult:
    """What :meth:`Models.download` did."""

    version: ModelVersion
    root: Path
    files: int
    downloaded: int
    skipped: int
    bytes: int


def _name(name: str) -> str:
    return seg(names.model_name(name))


def _v(version: Any) -> str:
    return names.version_number(version)


class Models:
    """``/api/v1/models``."""

    def __init__(self, client: Client):
        self._client = client
        self._t = client._transport

    def list(
        self,
        *,
        name_contains: str | None = None,
        name_prefix: str | None = None,
        tags: dict[str, str | None] | None = None,
        max_results: int | None = None,
        page_token: str | None = None,
    ) -> RegisteredModelPage:
        """One page of registered models. ``tags`` maps key → value (None: the model has the tag, any value)."""
        params: list[tuple[str, Any]] = []
        for k, v in {
            "name_contains": name_contains,
            "name_prefix": name_prefix,
            "max_results": max_results,
            "page_token": page_token,
        }.items():
            if v is not None:
                params.append((k, v))
        for key, value in (tags or {}).items():
            params.append(("tag", key if value is None else f"{key}={value}"))
        return self._t.call(RegisteredModelPage, "GET", "/models", params=params)

    def iter(self, *, limit: int | None = None, **filters: Any) -> Iterator[RegisteredModel]:
        """Every registered model matching ``filters`` (see :meth:`list`), following the pages."""
        token, seen = None, 0
        while True:
            page = self.list(**filters, page_token=token)
            for m in page.models:
                if limit is not None and seen >= limit:
                    return
                seen += 1
                yield m
            token = page.next_page_token
            if not token:
                return

    def get(self, name: str) -> RegisteredModel:
        return self._t.call(RegisteredModel, "GET", f"/models/{_name(name)}")

    def create(
        self, name: str, *, description: str | None = None, tags: dict[str, str] | None = None
    ) -> RegisteredModel:
        body: dict[str, Any] = {"name": names.model_name(name)}
        if description is not None:
            body["description"] = description
        if tags:
            body["tags"] = tags
        return self._t.call(RegisteredModel, "POST", "/models", json=body)

    def update(self, name: str, *, description: str) -> RegisteredModel:
        return self._t.call(RegisteredModel, "PATCH", f"/models/{_name(name)}", json={"description": description})

    def delete(self, name: str) -> None:
        """Delete a registered model with all its versions and their files."""
        self._t.request("DELETE", f"/models/{_name(name)}")

    def versions(self, name: str, *, max_results: int | None = None, page_token: str | None = None) -> ModelVersionPage:
        """One page of a model's versions, newest first."""
        params = {k: v for k, v in {"max_results": max_results, "page_token": page_token}.items() if v is not None}
        return self._t.call(ModelVersionPage, "GET", f"/models/{_name(name)}/versions", params=params)

    def version(self, name: str, version: int | str) -> ModelVersion:
        return self._t.call(ModelVersion, "GET", f"/models/{_name(name)}/versions/{_v(version)}")

    def update_version(self, name: str, version: int | str, *, description: str) -> ModelVersion:
        url = f"/models/{_name(name)}/versions/{_v(version)}"
        return self._t.call(ModelVersion, "PATCH", url, json={"description": description})

    def delete_version(self, name: str, version: int | str) -> None:
        self._t.request("DELETE", f"/models/{_name(name)}/versions/{_v(version)}")

    def alias(self, name: str, alias: str) -> ModelVersion:
        """The version ``alias`` points at."""
        return self._t.call(ModelVersion, "GET", f"/models/{_name(name)}/aliases/{seg(alias)}")

    def set_alias(self, name: str, alias: str, version: int | str) -> ModelVersion:
        url = f"/models/{_name(name)}/aliases/{seg(names.alias(alias))}"
        return self._t.call(ModelVersion, "PUT", url, json={"version": int(_v(version))})

    def delete_alias(self, name: str, alias: str) -> None:
        self._t.request("DELETE", f"/models/{_name(name)}/aliases/{seg(alias)}")

    def stage(self, name: str, version: int | str, stage: str, *, archive_existing: bool = False) -> ModelVersion:
        return self._t.call(
            ModelVersion,
            "POST",
            f"/models/{_name(name)}/versions/{_v(version)}/stage",
            json={"stage": stage, "archive_existing_versions": archive_existing},
        )

    def files(self, name: str, version: int | str) -> list[VersionFile]:
        """The version's files (download each with ``client.files.download(f.file_id)``)."""
        return self._t.call(list[VersionFile], "GET", f"/models/{_name(name)}/versions/{_v(version)}/files")

    def resolve(self, name: str, ref: int | str | None = None) -> ModelVersion:
        """A version by number (``3``), alias (``"@champion"``) or, for None / ``"latest"``, the newest one."""
        if isinstance(ref, str) and ref.startswith("@"):
            return self.alias(name, ref[1:])
        if ref is None or (isinstance(ref, str) and ref.lower() == "latest"):
            versions = self.versions(name, max_results=1).versions
            if not versions:
                raise HarborClientError(404, "NOT_FOUND", f"registered model {name!r} has no versions yet")
            return versions[0]
        return self.version(name, ref)

    # --- register and download ------------------------------------------------------------------------------
    def register(
        self,
        name: str,
        path: str | os.PathLike[str],
        *,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        aliases: list[str] | None = None,
        run_id: str | None = None,
        create_model: bool = True,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        parallel: int = 4,
        progress: Progress | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        on_plan: Callable[[int, int, int], None] | None = None,
    ) -> ModelVersion:
        """Register a new version of ``name`` from a file or a directory (e.g. an MLflow model directory).

        The name and aliases are checked first (and, with ``create_model=False``, that the model exists): nothing
        is sent for a registration that cannot succeed. Each file is uploaded with the resumable, parallel upload
        (small files several at a time), then the version is created from the uploaded file ids; the server
        attaches them without copying bytes. A re-run after an interruption or a failed registration reuses the
        files already uploaded. ``on_plan(files, total_bytes, reused_bytes)`` is told what will be sent.
        """
        names.model_name(name)
        for a in aliases or []:
            names.alias(a)
        if parallel < 1:
            raise invalid("parallel must be at least 1")
        items = _local_files(Path(path).expanduser())
        if not create_model:
            self.get(name)  # 404 before any byte is sent
        state = _RegisterState(Path(state_dir) if state_dir else default_state_dir(), self._t.url, path, name)
        saved = state.load()
        total = sum(st.st_size for _, _, st in items)
        agg = Aggregate(total, progress)
        done: dict[str, str] = {}  # relative path → file id
        to_send: list[tuple[str, Path, os.stat_result]] = []
        for rel, src, st in items:
            file_id = self._reusable(saved.get(rel), st)
            if file_id:
                done[rel] = file_id
                agg.set(rel, st.st_size)
            else:
                to_send.append((rel, src, st))
        if on_plan:
            on_plan(len(items), total, sum(st.st_size for rel, _, st in items if rel in done))
        agg.report()
        lock = threading.Lock()
        stop = threading.Event()

        def send(rel: str, src: Path, st: os.stat_result, chunk_parallel: int) -> None:
            record = self._client.uploads.upload(
                src,
                chunk_size=chunk_size,
                parallel=chunk_parallel,
                context=REGISTER_CONTEXT,
                name=rel,
                progress=lambda d, _t, rel=rel: agg.set(rel, d, stop),
                state_dir=state_dir,
            )
            with lock:
                done[rel] = record.id
                saved[rel] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "file_id": record.id}
                saved[rel]["sha256"] = record.sha256
                state.save(saved)

        small = [x for x in to_send if x[2].st_size <= chunk_size]
        big = [x for x in to_send if x[2].st_size > chunk_size]
        for rel, src, st in big:  # one at a time, each with parallel chunks
            send(rel, src, st, parallel)
        # one chunk each: several files at a time
        run_parallel([partial(send, rel, src, st, 1) for rel, src, st in small], parallel, stop, "mh-register")
        body: dict[str, Any] = {
            "files": [{"path": rel, "file_id": done[rel]} for rel, _, _ in items],
            "create_model": create_model,
        }
        for key, value in {"description": description, "tags": tags, "aliases": aliases, "run_id": run_id}.items():
            if value:
                body[key] = value
        version = self._t.call(ModelVersion, "POST", f"/models/{_name(name)}/versions", json=body, retries=1)
        state.delete()
        return version

    def _reusable(self, saved: Any, st: os.stat_result) -> str | None:
        """The id of an upload an earlier run made of this very file, if the server still has it unattached."""
        if not isinstance(saved, dict) or saved.get("size") != st.st_size or saved.get("mtime_ns") != st.st_mtime_ns:
            return None
        try:
            record = self._client.files.get(str(saved.get("file_id")))
        except HarborClientError:
            return None
        if record.size == st.st_size and record.sha256 == saved.get("sha256") and record.context == REGISTER_CONTEXT:
            return record.id
        return None

    def download(
        self,
        name: str,
        version: int | str | None = None,
        dest: str | os.PathLike[str] | None = None,
        *,
        parallel: int = 4,
        progress: Progress | None = None,
        on_plan: Callable[[ModelVersion, int, int], None] | None = None,
    ) -> DownloadResult:
        """Download every file of a version (number, ``"@alias"``, or None for the newest) into ``dest`` (default:
        the current directory), keeping relative paths. Files already there with the right size and SHA-256 are
        skipped; ``.part`` files left by an interrupted run resume with ``Range``; every file's SHA-256 is
        checked; ``parallel`` files at a time. ``on_plan(version, files, total_bytes)`` is told what comes."""
        if parallel < 1:
            raise invalid("parallel must be at least 1")
        v = self.resolve(name, version)
        files = self.files(name, v.version)
        root = Path(dest).expanduser() if dest is not None else Path.cwd()
        plan = [(f, root.joinpath(*safe_relative(f.path))) for f in files]
        total = sum(f.size for f in files)
        if on_plan:
            on_plan(v, len(files), total)
        fetches = [Fetch(f.path, f"/files/{seg(f.file_id)}/content", target, f.size, f.sha256) for f, target in plan]
        skipped = fetch_many(self._t, fetches, parallel, progress, "mh-fetch")
        return DownloadResult(v, root, len(plan), len(plan) - len(skipped), len(skipped), total)


def _local_files(src: Path) -> list[tuple[str, Path, os.stat_result]]:
    """(relative '/'-path, path, stat) of a file, or of every regular file under a directory, sorted by path."""
    try:
        st = src.stat()
    except OSError as exc:
        raise local_file(f"cannot read {src}: {exc.strerror or exc}") from None
    if src.is_file():
        found = [(src.name, src, st)]
    elif src.is_dir():
        found = []
        for folder, dirs, files in os.walk(src):
            dirs.sort()
            for n in sorted(files):
                p = Path(folder) / n
                if p.is_file():
                    found.append((p.relative_to(src).as_posix(), p, p.stat()))
    else:
        raise local_file(f"{src} is neither a file nor a directory")
    if not found:
        raise local_file(f"{src} holds no files to register")
    if len(found) > MAX_VERSION_FILES:
        raise HarborClientError(
            0, "TOO_MANY_FILES", f"{src} holds {len(found)} files; a version holds at most {MAX_VERSION_FILES}"
        )
    for rel, _, _ in found:
        if "\\" in rel or not rel.isprintable():
            raise local_file(f"cannot register {rel!r}: paths may not hold backslashes or control characters")
    return found


class _RegisterState:
    """``<state_dir>/register-<key>.json``: the files an unfinished ``register`` of one path already uploaded
    (relative path → size, mtime, file id, SHA-256), so a re-run sends only the rest."""

    def __init__(self, directory: Path, base_url: str, src: str | os.PathLike[str], name: str):
        ident = {"base_url": base_url, "path": str(Path(src).expanduser().resolve()), "name": name}
        key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:32]
        self.ident = ident
        self.path = directory.expanduser() / f"register-{key}.json"

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or any(data.get(k) != v for k, v in self.ident.items()):
            return {}
        files = data.get("files")
        return dict(files) if isinstance(files, dict) else {}

    def save(self, files: dict[str, Any]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + f".{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps({**self.ident, "files": files}))
            os.replace(tmp, self.path)
        except OSError:
            pass  # resuming is a convenience

    def delete(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)
