"""The program one worker process runs: it loads a deployment package and answers requests for it.

It runs inside user environments that do not have modelharbor installed, so it uses only the standard library
and is started by path: ``<env python> -u worker_main.py --package DIR (--fd N | --socket PATH)``.

Protocol (one stream connection, one request at a time): every frame is a 4-byte big-endian length and that
many bytes of UTF-8 JSON. The executor first sends ``{"op": "init", "context": {...}}``; the worker imports
``deployment.py`` from the package, instantiates ``Deployment(base_directory, context)`` and answers
``{"op": "ready", "pid": N, "batch": bool}`` or ``{"op": "startup_error", "error": "...", "traceback": "..."}``
(and exits). Then, until the connection closes:

- ``{"op": "request", "data": X[, "context": {...}]}`` → ``{"ok": true, "value": Y}`` or
  ``{"ok": false, "error": "Type: message", "traceback": "..."}``
- ``{"op": "batch", "data": [X, ...]}`` → ``{"ok": true, "values": [...]}`` from ``Deployment.requests(list)``
  when the class has it, else ``{"ok": all, "items": [<one answer per item>]}`` from ``request`` per item
- ``{"op": "ping"}`` → ``{"op": "pong"}``

Stdout and stderr (user code's prints, tracebacks) go to the executor's log pipes; nothing else is printed.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import socket
import struct
import sys
import traceback

_HERE = os.path.dirname(os.path.abspath(__file__))
# The directory holding this file (modelharbor's compute modules) must not shadow the user's modules.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

_HEADER = struct.Struct(">I")
MAX_FRAME = 1 << 30
TRACEBACK_LINES = 15
TRACEBACK_CHARS = 4000


def _default(obj):
    """numpy arrays and scalars (anything with ``tolist``) become JSON; sets and tuples become lists."""
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return tolist()
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_default).encode


def encode(obj) -> bytes:
    body = _JSON(obj).encode("utf-8")
    return _HEADER.pack(len(body)) + body


def read_frame(rfile):
    """The next JSON frame, or None when the executor closed the connection."""
    head = rfile.read(4)
    if not head:
        return None
    if len(head) < 4:
        raise EOFError("connection closed inside a frame header")
    (size,) = _HEADER.unpack(head)
    if size > MAX_FRAME:
        raise ValueError(f"frame of {size} bytes is larger than {MAX_FRAME}")
    body = rfile.read(size)
    if len(body) < size:
        raise EOFError("connection closed inside a frame")
    return json.loads(body)


def describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def tail(text: str) -> str:
    lines = text.rstrip().splitlines()[-TRACEBACK_LINES:]
    return "\n".join(lines)[-TRACEBACK_CHARS:]


def _report(exc: BaseException) -> dict:
    """The error answer for an exception user code raised; the full traceback also goes to the log."""
    tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None  # from user code on
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    sys.stderr.write(text)
    sys.stderr.flush()
    return {"ok": False, "error": describe(exc), "traceback": tail(text)}


def _takes_context(method) -> bool:
    """Whether ``method(data, context)`` is the signature (UbiOps' request with a request context)."""
    try:
        params = list(inspect.signature(method).parameters.values())
    except (TypeError, ValueError):
        return False
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2


class Worker:
    def __init__(self, package: str, context: dict):
        package = os.path.abspath(package)
        libraries = os.path.join(package, "libraries")
        if os.path.isdir(libraries):
            sys.path.insert(0, libraries)
        sys.path.insert(0, package)
        if not os.path.isfile(os.path.join(package, "deployment.py")):
            raise FileNotFoundError(f"the package has no deployment.py (looked in {package})")
        module = importlib.import_module("deployment")
        cls = getattr(module, "Deployment", None)
        if cls is None or not isinstance(cls, type):
            raise AttributeError("deployment.py defines no class Deployment")
        self.deployment = cls(package, context)
        self.request_method = getattr(self.deployment, "request", None)
        if not callable(self.request_method):
            raise AttributeError("class Deployment has no request(data) method")
        self.request_context = _takes_context(self.request_method)
        self.batch_method = getattr(self.deployment, "requests", None)
        if not callable(self.batch_method):
            self.batch_method = None
        self.batch_context = self.batch_method is not None and _takes_context(self.batch_method)

    def one(self, data, context) -> dict:
        try:
            if self.request_context:
                value = self.request_method(data, context if context is not None else {})
            else:
                value = self.request_method(data)
        except (Exception, SystemExit) as exc:
            return _report(exc)
        return {"ok": True, "value": value}

    def batch(self, items, context) -> dict:
        if not isinstance(items, list):
            return {"ok": False, "error": "TypeError: a batch must be a list"}
        if self.batch_method is None:
            answers = [self.one(item, context) for item in items]
            return {"ok": all(a["ok"] for a in answers), "items": answers}
        try:
            if self.batch_context:
                values = self.batch_method(items, context if context is not None else {})
            else:
                values = self.batch_method(items)
        except (Exception, SystemExit) as exc:
            return _report(exc)
        if not isinstance(values, (list, tuple)) or len(values) != len(items):
            return {"ok": False, "error": "TypeError: requests() must return a list with one output per input"}
        return {"ok": True, "values": list(values)}


def _connect(args) -> socket.socket:
    if args.fd is not None:
        return socket.socket(fileno=args.fd)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(args.socket)
    return sock


def _die_with_parent(parent: int) -> None:
    """Linux: get SIGKILL when the executor's process goes away, so no worker outlives a crashed server."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - not Linux: the closed connection still ends the worker
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _send(sock: socket.socket, answer: dict) -> None:
    try:
        frame = encode(answer)
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        frame = encode({"ok": False, "error": f"TypeError: the result is not JSON-serialisable: {exc}"})
    sock.sendall(frame)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", required=True)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--fd", type=int, help="an inherited connected stream socket")
    where.add_argument("--socket", help="a Unix socket path to connect to")
    parser.add_argument("--parent-pid", type=int, help="die with this process (Linux)")
    args = parser.parse_args(argv)
    if args.parent_pid:
        _die_with_parent(args.parent_pid)
    sock = _connect(args)
    rfile = sock.makefile("rb", buffering=1 << 16)
    init = read_frame(rfile)
    if init is None:
        return 0
    try:
        worker = Worker(args.package, init.get("context") or {})
    except BaseException as exc:  # noqa: BLE001 - whatever deployment.py does is reported, then we exit
        text = traceback.format_exc()
        sys.stderr.write(text)
        sys.stderr.flush()
        sock.sendall(encode({"op": "startup_error", "error": describe(exc), "traceback": tail(text)}))
        return 3
    sys.stdout.flush()
    sock.sendall(encode({"op": "ready", "pid": os.getpid(), "batch": worker.batch_method is not None}))
    while True:
        message = read_frame(rfile)
        if message is None:
            return 0
        op = message.get("op")
        if op == "request":
            answer = worker.one(message.get("data"), message.get("context"))
        elif op == "batch":
            answer = worker.batch(message.get("data"), message.get("context"))
        elif op == "ping":
            answer = {"op": "pong"}
        else:
            answer = {"ok": False, "error": f"ValueError: unknown operation {op!r}"}
        _send(sock, answer)


if __name__ == "__main__":
    sys.exit(main())
