"""Short database calls on the event loop: :func:`run_db`.

A route whose core call only runs units of work (no storage, no compute) may ``await run_db(services.db, fn, ...)``
instead of handing the call to a worker thread. The database decides whether the call can run without waiting
(:meth:`modelharbor.db.engine.Database.try_without_waiting`: SQLite, where readers never wait in WAL mode and a
writer takes the write lock at once or not at all); a call that cannot — the lock is taken, or the database is
PostgreSQL — runs in a worker thread like any other, so the event loop never waits on a lock. The thread hop lives
here, at the edge: the database layer knows no event loop framework.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

from starlette.concurrency import run_in_threadpool

T = TypeVar("T")


class _Database(Protocol):  # modelharbor.db.engine.Database, which the API does not import
    def try_without_waiting(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> tuple[bool, T | None]: ...


async def run_db(db: _Database, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``, a call whose only blocking work is this database's units of work: on the event loop
    when it need not wait (SQLite), else in a worker thread."""
    done, value = db.try_without_waiting(fn, *args, **kwargs)
    if done:
        return cast(T, value)  # fn's own result
    return await run_in_threadpool(fn, *args, **kwargs)
