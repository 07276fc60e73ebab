"""The embedded executor: every instance of a deployment version is one OS process on this machine.

An instance is ``<environment python> -u worker_main.py --package DIR --fd N`` (see :mod:`worker_main`): it
loads ``deployment.py`` once and then answers one request at a time over a socket pair (length-prefixed JSON
frames) that stays open for its whole life, so a request costs two small socket writes, not a process start.

Threads and loops:

- ``request`` runs in the caller's event loop (uvicorn's) and talks to the instance's socket directly with the
  loop's ``sock_sendall`` and a readiness wait (``_recv``): the hot path wakes no other thread and holds the
  executor lock only to take an idle instance and to give it back.
- One daemon thread, the supervisor, does everything else: starts processes, reads their stdout/stderr into
  bounded in-memory logs, reads their start-up answer, reaps exits (health check), replaces dead instances,
  backs off from crash loops, stops idle instances above the minimum, drains replaced revisions. Only it
  touches its selector and closes instance sockets and pipes.
- ``deploy``/``undeploy``/``status``/``logs``/``check``/``shutdown`` may be called from any thread.

A request that waits for an instance is handed one directly by whoever frees it (``dispatch``); when every
instance is busy it may be sent ahead on a busy instance's connection (``pipelining``).

The modules (``LocalExecutor`` mixes the three behaviours into one object that holds their shared state, so the
hot path costs no more than one class would):

- ``framing``: frames on the socket (``_encode``, ``_take_frame``, ``_recv``, ``_Lost``)
- ``state``: ``_Deployment``, ``_Instance``, ``_Waiter``, ``_Slot``, ``_LogBuffer``
- ``dispatch``: ``Dispatcher``, the request path (take or wait for an instance, send, read, release, hand over)
- ``pipelining``: ``Pipeliner``, requests sent ahead to a busy instance and their settlement when it ends
- ``supervisor``: ``Supervisor``, the supervisor thread (spawn via the sandbox, logs, reaping, housekeeping,
  back-off) and the planning of instances
- ``executor``: ``LocalExecutor``, the executor protocol and the state the others share
"""

from modelharbor.compute.local.executor import PASSED_ENV, LocalExecutor
from modelharbor.compute.local.framing import MAX_FRAME
from modelharbor.compute.local.pipelining import PIPELINE_DEPTH, PIPELINE_FRAME, PIPELINE_MAX_SERVICE
from modelharbor.compute.local.state import _RETRY as _RETRY
from modelharbor.compute.local.state import _TURN as _TURN
from modelharbor.compute.local.state import _Deployment as _Deployment
from modelharbor.compute.local.state import _Instance as _Instance
from modelharbor.compute.local.state import _Slot as _Slot
from modelharbor.compute.local.state import _Waiter as _Waiter
from modelharbor.compute.local.supervisor import WORKER_MAIN

__all__ = [
    "MAX_FRAME",
    "PASSED_ENV",
    "PIPELINE_DEPTH",
    "PIPELINE_FRAME",
    "PIPELINE_MAX_SERVICE",
    "WORKER_MAIN",
    "LocalExecutor",
]
