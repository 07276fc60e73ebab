"""The request path: a request takes an idle instance (or waits for one), sends its frame, reads the answer.

``request`` runs in the caller's event loop (uvicorn's) and talks to the instance's socket directly with the
loop's ``sock_sendall`` and a readiness wait (``_recv``): the hot path wakes no other thread and holds the
executor lock only to take an idle instance and to give it back (``_release``).

A request that waits for an instance holds a future of its own loop; whoever frees an instance (another
request, the supervisor when a new instance is ready) hands it over directly (``call_soon_threadsafe`` across
threads), so there is no thundering herd and no polling. When every instance is busy, the request may instead be
sent ahead on a busy instance's connection (``pipelining``). A request whose instance times out or breaks ends it
(``_end``); a caller that leaves after sending leaves the answer to the supervisor (``_drain``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import signal
import threading
import time
from collections import deque
from typing import Any

from modelharbor.compute.base import Result
from modelharbor.compute.local.framing import _encode, _Lost, _recv, _take_frame
from modelharbor.compute.local.state import (
    _RETRY,
    _TURN,
    _Deployment,
    _expire,
    _Instance,
    _killpg,
    _Slot,
    _Waiter,
)


class Dispatcher:
    """The request path of ``LocalExecutor`` (a mixin: the state is the executor's). It uses ``Pipeliner``'s
    ``_send_ahead_locked``/``_feed_locked``/``_take_turn``/``_abandon``/``_salvage``/``_settle_pipe_locked`` and
    ``Supervisor``'s ``_plan_locked``/``_stop_locked``/``_finalize_if_done_locked``/``_wake``."""

    _lock: threading.Lock
    _deployments: dict[str, _Deployment]
    _commands: deque[tuple]
    _closed: bool

    async def request(
        self, key: str, data: Any, *, timeout: float | None = None, context: dict[str, Any] | None = None
    ) -> Result:
        t0 = time.monotonic()
        message: dict[str, Any] = {"op": "batch" if isinstance(data, list) else "request", "data": data}
        if context:
            message["context"] = context
        try:
            frame = _encode(message)
        except (TypeError, ValueError) as exc:
            return _failed(t0, f"the request is not JSON-serialisable: {exc}")
        loop = asyncio.get_running_loop()
        for _attempt in range(3):
            waiter = slot = None
            wake = False
            with self._lock:
                dep = self._deployments.get(key)
                if dep is None or self._closed:
                    return _failed(t0, f"deployment version {key!r} is not deployed")
                if dep.failed:
                    return _failed(t0, dep.error or "the deployment failed to start")
                spec = dep.spec
                limit = spec.request_timeout if timeout is None else timeout
                deadline = t0 + limit
                inst = self._take_idle_locked(dep, deadline)
                if inst is None:
                    queued = dep.queued()
                    if queued >= spec.maximum_queue:
                        return _failed(t0, f"queue full: {queued} requests are waiting for an instance")
                    if not dep.waiters:
                        slot = self._send_ahead_locked(dep, loop, frame, deadline)
                    if slot is None:
                        waiter = _Waiter(loop, frame, deadline)
                        dep.waiters.append(waiter)
                        if len(dep.instances) < spec.maximum_instances or dep.replace:
                            wake = self._plan_locked(dep)  # else the supervisor's next tick looks (after a rollout)
            if waiter is not None:
                if wake:
                    self._wake()
                got = await self._wait(dep, waiter, deadline)
                if isinstance(got, str):
                    return _failed(t0, got if got != "timeout" else f"timed out after {limit:g} s in the queue")
                if isinstance(got, _Slot):
                    slot = got
                else:
                    inst = got
            if slot is not None:
                outcome = await self._take_turn(loop, slot, limit)
            else:
                outcome = await self._exchange(loop, inst, frame, deadline, limit)
            if outcome is not None and outcome is not _RETRY:
                return _answer(t0, outcome)
            # The instance ended before it started the request: nothing ran, another instance may take it.
        return _failed(t0, "no instance could take the request (they kept exiting)")

    def _take_idle_locked(self, dep: _Deployment, deadline: float) -> _Instance | None:
        while dep.idle:
            inst = dep.idle.pop()
            if inst.state == "ready" and inst.broken is None and inst.exit_code is None:
                self._hold_locked(inst, deadline)
                return inst
        return None

    @staticmethod
    def _hold_locked(inst: _Instance, deadline: float) -> None:
        inst.state = "busy"
        inst.holder = "caller"
        inst.sending = True
        inst.head_deadline = deadline
        inst.head_sent = time.monotonic()

    async def _wait(self, dep: _Deployment, waiter: _Waiter, deadline: float) -> _Instance | _Slot | str:
        """An instance handed over to ``waiter``, a slot it was sent ahead in, or an error text ("timeout" when the
        deadline passed)."""
        fut = waiter.future
        timer = waiter.loop.call_later(max(0.0, deadline - time.monotonic()), _expire, fut)
        try:
            got = await fut
        except BaseException:  # cancelled: a hand-over already on its way sees the cancelled future
            self._forget_waiter(dep, waiter)
            raise
        finally:
            timer.cancel()
        if got == "timeout":
            self._forget_waiter(dep, waiter)
        return got

    def _forget_waiter(self, dep: _Deployment, waiter: _Waiter) -> None:
        with self._lock, contextlib.suppress(ValueError):
            dep.waiters.remove(waiter)
        fut = waiter.future
        if fut.done() and not fut.cancelled():
            got = fut.result()
            if isinstance(got, _Instance):  # handed over just as the caller left
                self._release(got, answered=False)
            elif isinstance(got, _Slot):  # sent ahead just as the caller left
                self._abandon(got)
        else:
            fut.cancel()

    async def _exchange(
        self, loop: asyncio.AbstractEventLoop, inst: _Instance, frame: bytes, deadline: float, limit: float
    ) -> dict | str | None:
        """The instance's answer (a dict), an error text, or None when the request never reached it."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            inst.sending = False
            self._release(inst, answered=False)
            return f"timed out after {limit:g} s in the queue"
        try:
            async with asyncio.timeout(remaining):
                await loop.sock_sendall(inst.sock, frame)
        except TimeoutError:
            self._end(inst, f"request timed out after {limit:g} s while it was sent: killing the instance")
            return f"request timed out after {limit:g} s (the instance was restarted)"
        except OSError as exc:
            if isinstance(exc, (BrokenPipeError, ConnectionResetError)):
                self._end(inst, "its connection was closed before it read a request")
                return None
            self._end(inst, f"its connection broke during a request ({exc})")
            return await self._crash_text(inst)
        except BaseException:  # cancelled: the caller left
            self._end(inst, "a request was cancelled while it was being sent")
            raise
        inst.sending = False
        if inst.dep is not None and inst.dep.waiters:
            with self._lock:
                deliveries = self._feed_locked(inst)
            self._deliver_all(deliveries)
        return await self._read_answer(loop, inst, deadline, limit)

    async def _read_answer(
        self, loop: asyncio.AbstractEventLoop, inst: _Instance, deadline: float, limit: float
    ) -> dict | str:
        sock = inst.sock
        buf = inst.rbuf
        try:
            body = _take_frame(buf)  # often read already, with the answer before it
            if body is None:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    while True:
                        chunk = await _recv(loop, sock)
                        if not chunk:
                            raise _Lost("connection closed")
                        buf += chunk
                        body = _take_frame(buf)
                        if body is not None:
                            break
        except TimeoutError:
            reason = f"request timed out after {limit:g} s: killing the instance"
            self._break(inst, reason)
            frames = await self._salvage(loop, inst) if inst.pipe else []
            self._end(inst, reason, head_done=bool(frames), frames=frames[1:])
            return f"request timed out after {limit:g} s (the instance was restarted)"
        except (_Lost, OSError) as exc:
            self._end(inst, f"its connection broke during a request ({exc})")
            return await self._crash_text(inst)
        except BaseException:  # cancelled: the caller left
            self._drain(inst, deadline)
            raise
        self._release(inst)
        try:
            return json.loads(body)
        except ValueError as exc:
            return f"the worker sent an invalid answer: {exc}"

    def _release(self, inst: _Instance, *, answered: bool = True) -> None:
        """Give an instance back after a request: to the request sent ahead on it, to the next waiter, to the pool,
        or to its end."""
        handover = None
        deliveries: list[tuple[Any, Any]] = []
        wake = False
        with self._lock:
            t = time.monotonic()
            if answered:
                inst.requests += 1
                took = t - max(inst.head_sent, inst.answered_at)  # it ran one request at a time, in order
                inst.service = took if inst.service == math.inf else 0.7 * inst.service + 0.3 * took
                inst.answered_at = t
            inst.last_used = t
            dep = inst.dep
            if inst.pipe and inst.broken is None:  # exited: the next reader takes an answer it left, or its end
                slot = inst.pipe.popleft()
                inst.head_deadline = slot.deadline
                inst.head_sent = slot.sent_at
                if slot.abandoned:
                    inst.holder = "drain"
                    inst.deadline = slot.deadline
                    self._commands.append(("drain", inst))
                    wake = True
                else:
                    inst.holder = "caller"
                    deliveries.append((slot, _TURN))
                deliveries += self._feed_locked(inst)
            else:
                deliveries += self._settle_pipe_locked(inst, head_done=answered)
                inst.holder = None
                if inst.broken is not None or inst.exit_code is not None:
                    inst.state = "stopping"
                    self._finalize_if_done_locked(inst)
                elif (
                    self._closed
                    or dep is None
                    or self._deployments.get(dep.spec.key) is not dep
                    or inst.generation != dep.generation
                    or (
                        len(dep.instances) > dep.spec.maximum_instances
                        and len(dep.current()) > dep.spec.maximum_instances
                    )
                ):
                    self._stop_locked(inst, "no longer needed")
                else:
                    while dep.waiters:
                        waiter = dep.waiters.popleft()
                        if not waiter.future.done():
                            handover = waiter
                            self._hold_locked(inst, waiter.deadline)
                            break
                    if handover is None:
                        inst.state = "ready"
                        dep.idle.append(inst)
        if handover is not None:
            self._deliver(handover, inst)
        elif inst.state == "stopping" or wake:
            self._wake()
        self._deliver_all(deliveries)

    def _deliver(self, waiter: _Waiter | _Slot, item: Any) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is waiter.loop:
            self._resolve(waiter, item)
            return
        try:
            waiter.loop.call_soon_threadsafe(self._resolve, waiter, item)
        except RuntimeError:  # that loop is closed: nobody waits any more
            self._unclaimed(waiter, item)

    def _resolve(self, waiter: _Waiter | _Slot, item: Any) -> None:
        if waiter.future.done():
            self._unclaimed(waiter, item)
        else:
            waiter.future.set_result(item)

    def _unclaimed(self, waiter: _Waiter | _Slot, item: Any) -> None:
        """Nobody took ``item``: give back what it holds (an instance, a place on a connection, a turn)."""
        if isinstance(item, _Instance):
            self._release(item, answered=False)
        elif isinstance(item, _Slot):
            self._abandon(item)
        elif item is _TURN and isinstance(waiter, _Slot):
            self._drain(waiter.inst, waiter.deadline)

    def _deliver_all(self, deliveries: list[tuple[Any, Any]]) -> None:
        for waiter, item in deliveries:
            self._deliver(waiter, item)

    def _break(self, inst: _Instance, reason: str) -> None:
        """Mark an instance as one that must not serve again and kill it."""
        with self._lock:
            if inst.broken is None:
                inst.broken = reason
                inst.system(reason)
        _killpg(inst.pid)

    def _end(self, inst: _Instance, reason: str, *, head_done: bool = False, frames: list[bytes] | tuple = ()) -> None:
        """A request's instance must not serve again (timeout, broken connection): kill it, count it, replace; the
        requests sent ahead to it get what its end left them (``head_done``: the holder's request finished;
        ``frames``: the answers read after that one's)."""
        self._break(inst, reason)
        with self._lock:
            deliveries = self._settle_pipe_locked(inst, head_done, frames)
        self._release(inst, answered=False)
        self._deliver_all(deliveries)

    def _drain(self, inst: _Instance, deadline: float) -> None:
        """The caller left after sending: the supervisor reads (and drops) the answer, then frees the instance."""
        with self._lock:
            inst.holder = "drain"
            inst.deadline = deadline
            self._commands.append(("drain", inst))
        self._wake()

    async def _crash_text(self, inst: _Instance) -> str:
        for _ in range(20):
            if inst.proc is None or inst.poll() is not None:
                break
            await asyncio.sleep(0.01)
        code = inst.poll()
        if code == -signal.SIGKILL and inst.launch is not None and inst.launch.memory_limit:
            # the kernel counts an OOM kill in the cgroup after it sent the SIGKILL: give the count a moment
            for _ in range(25):
                if inst.launch.exceeded() is not None:
                    break
                await asyncio.sleep(0.01)
        with self._lock:
            lines = inst.log.tail(10)
        text = f"the instance exited while handling the request ({inst.exit_text(code)})"
        return text + ("\n" + "\n".join(lines) if lines else "")


def _failed(t0: float, error: str) -> Result:
    return Result(ok=False, error=error, duration_ms=(time.monotonic() - t0) * 1000.0)


def _answer(t0: float, reply: dict | str) -> Result:
    duration = (time.monotonic() - t0) * 1000.0
    if isinstance(reply, str):
        return Result(ok=False, error=reply, duration_ms=duration)
    if "items" in reply:
        items = tuple(
            Result(ok=bool(a.get("ok")), value=a.get("value"), error=a.get("error"), traceback=a.get("traceback"))
            for a in reply["items"]
        )
        first = next(((n, a) for n, a in enumerate(items) if not a.ok), None)
        return Result(
            ok=first is None,
            value=[a.value for a in items],
            error=None if first is None else f"item {first[0]}: {first[1].error}",
            traceback=None if first is None else first[1].traceback,
            duration_ms=duration,
            items=items,
        )
    if "values" in reply:
        values = reply["values"]
        return Result(
            ok=True, value=values, duration_ms=duration, items=tuple(Result(ok=True, value=v) for v in values)
        )
    return Result(
        ok=bool(reply.get("ok")),
        value=reply.get("value"),
        error=reply.get("error"),
        traceback=reply.get("traceback"),
        duration_ms=duration,
    )
