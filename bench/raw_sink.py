"""A bare Starlette app that stores and serves request bodies: the "how fast could it be" baseline for bench/upload.py.

It runs under the same uvicorn settings as ``modelharbor serve`` (httptools + uvloop from uvicorn[standard],
the same keep-alive and h11 limits), and does only what any upload server must do:

- ``PUT /sink/{name}``       stream the body into ``DIR/name``, fsync the file and its folder, answer the size;
- ``PUT /sink/{name}/{n}``   the same for one chunk, stored as its own file ``DIR/name.chunks/n``;
- ``GET /sink/{name}``       stream ``DIR/name`` back (Starlette ``FileResponse``, its default 64 KiB reads);
  ``?chunk=BYTES`` reads in pieces of that size instead (ModelHarbor reads 1 MiB pieces);
- ``GET /healthz``.

No auth, no database, no hashing. Writes go straight from the event loop to the page cache (``os.write``),
the fsyncs run in the thread pool so parallel chunk uploads are not serialised behind them.

Run: ``python bench/raw_sink.py --dir DIR [--host 127.0.0.1] [--port 8001]``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse
from starlette.routing import Route


def _safe(part: str) -> str:
    if not part or part in (".", "..") or "/" in part or "\x00" in part:
        raise ValueError(part)
    return part


def _fsync_file_and_dir(fd: int, folder: Path) -> None:
    os.fsync(fd)
    dfd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


async def _store(request: Request, path: Path) -> JSONResponse:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    size = 0
    try:
        async for piece in request.stream():
            view = memoryview(piece)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            size += len(piece)
        await run_in_threadpool(_fsync_file_and_dir, fd, path.parent)
    finally:
        os.close(fd)
    return JSONResponse({"size": size})


def build_app(root: Path) -> Starlette:
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)

    async def put_whole(request: Request):
        return await _store(request, root / _safe(request.path_params["name"]))

    async def put_chunk(request: Request):
        name = _safe(request.path_params["name"])
        number = int(request.path_params["n"])
        return await _store(request, root / f"{name}.chunks" / str(number))

    async def get_whole(request: Request):
        path = root / _safe(request.path_params["name"])
        if not path.is_file():
            return PlainTextResponse("not found", status_code=404)
        response = FileResponse(path, media_type="application/octet-stream")
        chunk = request.query_params.get("chunk")
        if chunk:
            response.chunk_size = int(chunk)
        return response

    async def healthz(request: Request):
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/sink/{name}", put_whole, methods=["PUT"]),
            Route("/sink/{name}/{n:int}", put_chunk, methods=["PUT"]),
            Route("/sink/{name}", get_whole, methods=["GET"]),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, type=Path, help="Folder the bodies are written to.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    # The same uvicorn.run arguments as `modelharbor serve` (src/modelharbor/cli.py).
    uvicorn.run(
        build_app(args.dir),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        timeout_keep_alive=30,
        h11_max_incomplete_event_size=64 * 1024,
    )


if __name__ == "__main__":
    main()
