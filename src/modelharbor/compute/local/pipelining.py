"""Pipelining: requests sent ahead on a busy instance's connection, and what they get when it ends.

When every instance a version may have is busy, the next request is sent ahead to a busy instance's connection
(``PIPELINE_DEPTH``: the one it runs and up to 3 more), so the worker starts it the moment it answered the
one before instead of sleeping until the server has read that answer and sent the next — on a loaded machine the
worker's wake-ups cost more than the model. The worker still runs one request at a time, in order, and answers
in order; the request sent ahead waits its turn to read (``_Slot``). Only small frames whose deadline is no
earlier than the ones before them are sent ahead, so a request never times out behind another on the
connection. When an instance dies or is killed while a request waits on its connection, what the worker wrote
before it died says what ran: a request behind one that never finished did not start and is retried on another
instance; one whose answer arrived gets it; the one in between ran and failed with the instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from typing import Any

from modelharbor.compute.local.framing import _Lost, _recv, _take_frame
from modelharbor.compute.local.state import _RETRY, _TURN, _Deployment, _expire, _Instance, _Slot

PIPELINE_DEPTH = 4  # requests on one instance's connection at once: the one it runs and up to 3 sent ahead
PIPELINE_FRAME = 64 * 1024  # only requests this small are sent ahead
# With more than one instance, only to an instance whose requests take at most this long (moving average): a request
# waiting on one instance's connection cannot go to another that frees up first, which costs little behind fast
# requests and a lot behind slow ones — and pipelining only pays when a request is about as cheap as a hand-off.
PIPELINE_MAX_SERVICE = 0.005
SALVAGE_SECONDS = 2.0  # after killing an instance, how long to read what it wrote before it died


class Pipeliner:
    """Sending requests ahead and settling them, for ``LocalExecutor`` (a mixin: the state is the executor's). It
    uses ``Dispatcher``'s ``_read_answer``/``_break``/``_drain``."""

    _lock: threading.Lock
    _deployments: dict[str, _Deployment]
    _closed: bool
    sent_ahead: int

    def _send_ahead_locked(
        self, dep: _Deployment, loop: asyncio.AbstractEventLoop, frame: bytes, deadline: float
    ) -> _Slot | None:
        """Send ``frame`` to a busy instance's connection behind the request it runs (see the module docstring), or
        None when none can take it now: the version may still start instances, the frame is large, or every
        busy instance has a full pipe or a request with a later deadline on it."""
        current = self._pipelining_locked(dep)
        if current is None or len(frame) > PIPELINE_FRAME:
            return None
        takers = [inst for inst in current if self._can_take_ahead_locked(inst, deadline)]
        if not takers:
            return None
        return self._put_ahead_locked(min(takers, key=lambda inst: len(inst.pipe)), loop, frame, deadline)

    def _pipelining_locked(self, dep: _Deployment) -> list[_Instance] | None:
        """The instances of a live deployment that runs every instance it may (requests can be sent ahead to
        them), or None: more instances may start (a waiting request is what makes them start) or it is gone."""
        if self._closed or self._deployments.get(dep.spec.key) is not dep:
            return None
        current = dep.current()
        return current if len(current) >= dep.spec.maximum_instances else None

    @staticmethod
    def _can_take_ahead_locked(inst: _Instance, deadline: float) -> bool:
        if (
            inst.state != "busy"
            or inst.holder != "caller"
            or inst.sending
            or inst.broken is not None
            or inst.exit_code is not None
            or inst.sock is None
            or len(inst.pipe) >= PIPELINE_DEPTH - 1
        ):
            return False
        if (inst.dep.spec if inst.dep else inst.spec).maximum_instances > 1 and inst.service > PIPELINE_MAX_SERVICE:
            return False
        return deadline >= (inst.pipe[-1].deadline if inst.pipe else inst.head_deadline)

    def _put_ahead_locked(
        self, inst: _Instance, loop: asyncio.AbstractEventLoop, frame: bytes, deadline: float
    ) -> _Slot | None:
        try:
            sent = inst.sock.send(frame)
        except OSError:  # full (BlockingIOError) or gone: the request waits for an instance the usual way
            return None
        slot = _Slot(loop, inst, deadline, frame[sent:])
        if slot.rest:
            inst.sending = True  # the rest goes first: nothing else may be sent ahead until it is out
        inst.pipe.append(slot)
        self.sent_ahead += 1
        return slot

    def _feed_locked(self, inst: _Instance) -> list[tuple[Any, Any]]:
        """Send waiting requests ahead to ``inst`` while its pipe has room; the deliveries that tell them."""
        dep = inst.dep
        deliveries: list[tuple[Any, Any]] = []
        if dep is None or inst.generation != dep.generation or self._pipelining_locked(dep) is None:
            return deliveries
        while dep.waiters:
            waiter = dep.waiters[0]
            if waiter.future.done():
                dep.waiters.popleft()
                continue
            if len(waiter.frame) > PIPELINE_FRAME or not self._can_take_ahead_locked(inst, waiter.deadline):
                break
            slot = self._put_ahead_locked(inst, waiter.loop, waiter.frame, waiter.deadline)
            if slot is None:
                break
            dep.waiters.popleft()
            deliveries.append((waiter, slot))
        return deliveries

    async def _take_turn(self, loop: asyncio.AbstractEventLoop, slot: _Slot, limit: float) -> dict | str | None:
        """A request sent ahead: send what was left of its frame, wait until the answers before it were read, then
        read its own (or take what the instance's end left it)."""
        inst = slot.inst
        if slot.rest:
            try:
                async with asyncio.timeout(max(0.0, slot.deadline - time.monotonic())):
                    await loop.sock_sendall(inst.sock, slot.rest)
            except BaseException as exc:  # half a frame on the wire: the instance cannot serve on
                # the holder sees the end of the connection and retries this request elsewhere (it never started)
                self._break(inst, f"a request sent ahead could not be sent whole ({type(exc).__name__})")
                if not isinstance(exc, Exception):  # cancelled
                    self._abandon(slot)
                    raise
            else:
                slot.rest = b""
                inst.sending = False
        fut = slot.future
        timer = loop.call_later(max(0.0, slot.deadline - time.monotonic()), _expire, fut)
        try:
            got = await fut
        except BaseException:  # cancelled: the caller left; its answer is read and dropped in its turn
            self._abandon(slot)
            raise
        finally:
            timer.cancel()
        if got == "timeout":
            self._abandon(slot)
            return f"timed out after {limit:g} s waiting on the instance"
        if got is _TURN:
            return await self._read_answer(loop, inst, slot.deadline, limit)
        return got  # _RETRY, an error text or the answer salvaged from the instance's end

    def _abandon(self, slot: _Slot) -> None:
        """The caller of a request sent ahead left: its answer will be read and dropped when its turn comes."""
        inst = slot.inst
        with self._lock:
            if slot in inst.pipe:
                slot.abandoned = True
                return
        fut = slot.future
        if fut.done() and not fut.cancelled() and fut.result() is _TURN:  # its turn came just as it left
            self._drain(inst, slot.deadline)

    async def _salvage(self, loop: asyncio.AbstractEventLoop, inst: _Instance) -> list[bytes]:
        """The whole frames a killed instance wrote before it died (read until its connection ends)."""
        frames: list[bytes] = []
        buf = inst.rbuf
        with contextlib.suppress(TimeoutError, OSError, _Lost):
            async with asyncio.timeout(SALVAGE_SECONDS):
                while True:
                    while (body := _take_frame(buf)) is not None:
                        frames.append(body)
                    chunk = await _recv(loop, inst.sock)
                    if not chunk:
                        break
                    buf += chunk
        return frames

    def _settle_pipe_locked(
        self, inst: _Instance, head_done: bool, frames: list[bytes] | tuple = ()
    ) -> list[tuple[Any, Any]]:
        """The requests sent ahead to an instance that ended: each gets what it is owed (see the docstring)."""
        deliveries: list[tuple[Any, Any]] = []
        ran = head_done  # the request before this one finished, so this one may have started
        for n, slot in enumerate(inst.pipe):
            if n < len(frames):
                try:
                    outcome: Any = json.loads(frames[n])
                except ValueError as exc:
                    outcome = f"the worker sent an invalid answer: {exc}"
                ran = True
            elif ran:
                outcome = f"the instance ended while it handled the request ({inst.broken or 'it exited'})"
                ran = False
            else:
                outcome = _RETRY
            if not slot.abandoned:
                deliveries.append((slot, outcome))
        inst.pipe.clear()
        inst.sending = False
        return deliveries
