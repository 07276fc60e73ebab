"""Intents: crash-safe records of store objects that may be referenced by no blob (``pending_objects``).

Bytes are written before the row that references them is committed ("bytes before rows"), so a process that dies in
between leaves bytes nothing points at. Every such window is named by a row here, committed before it opens:

- **A fresh object** (a single upload's ``objects/<uuid>``): :meth:`PendingObjects.announce` commits the row before
  the first byte; while the writer lives, :meth:`PendingObjects.alive` refreshes ``created_at`` every third of the
  grace period (one small transaction each time, however long the upload takes); the commit that makes a blob point
  at the key deletes the row in the same transaction (:meth:`PendingObjects.settle_in`, which fails if the sweep has
  claimed it). A failed write deletes the object and the row at once; so does deduplication, after its commit.
- **A closed prefix** (a chunked session's ``uploads/<session>/`` once completed, aborted or expired): the closing
  transaction adds a row for the prefix (:func:`close_prefix_in`), naming the blob whose segments it keeps; after the
  grace period (when chunk writes still in flight have ended) the sweep deletes every other object under it.
- **Released keys** (a blob's segments once its last file went, deleted after the commit): the releasing
  transaction adds rows already claimed (:func:`release_in`); the next sweep deletes whatever the caller did not.

The sweep (:meth:`PendingObjects.sweep`, run by the task runner with the upload sweep) first *claims* rows older than
the grace period in one committed statement; a claimed row is never settled, so no blob can reference its key later.
Only then are the bytes deleted, then the rows — a sweeper that dies half-way leaves claimed rows the next one
finishes. Any number of servers may sweep at once (deleting twice is harmless).

The same sweep then removes **unfinished writes** (:meth:`PendingObjects.sweep_unfinished`): the local store's
``<key>#<n>`` staging files and S3's incomplete multipart uploads, which a writer killed mid-write leaves and no
listing shows. One goes only when no live writer owns it: it was last written to more than the grace period ago
*and* its key has no owner — no unclaimed intent for the key refreshed within the grace period, and no owner a
service registered for its prefix (:meth:`PendingObjects.add_owner`: an open upload session owns the chunks under
``uploads/<session>/``, a running import the packages under its staged prefix). A live writer on another replica
refreshes its intent (or its session is open), so its write is never taken; one that was idle for longer than the
grace period while its intent lapsed would have failed its commit anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import timedelta
from typing import TypeVar

from sqlalchemy import String, cast, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from modelharbor.core.clock import now
from modelharbor.db.engine import Database
from modelharbor.db.tables import BlobRow, PendingObjectRow
from modelharbor.domain.errors import Conflict, HarborError
from modelharbor.storage import BlobStore

log = logging.getLogger("modelharbor.pending")

SWEEP_BATCH = 200
RELEASED = "released"
LAPSED = "the upload was interrupted for too long and its bytes were discarded; upload it again"
T = TypeVar("T")

# Given a read-only session and keys under the owner's prefix: those a live writer owns.
Owner = Callable[[Session, list[str]], set[str]]


def _insert(s: Session):
    return postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert


def close_prefix_in(s: Session, prefix: str, context: str, *, keep_blob: str | None = None) -> None:
    """Within the caller's transaction: after the grace period, delete every object under ``prefix`` (ending in
    ``/``) except the segments of blob ``keep_blob``."""
    assert prefix.endswith("/")
    stmt = _insert(s)(PendingObjectRow).values(
        key=prefix, context=context, blob_sha256=keep_blob, created_at=now(), claimed_at=None
    )
    s.execute(
        stmt.on_conflict_do_update(
            index_elements=["key"], set_=dict(context=context, blob_sha256=keep_blob, created_at=now())
        )
    )


def release_in(s: Session, keys: Iterable[str], context: str = RELEASED) -> None:
    """Within the caller's transaction: ``keys`` are no blob's any more; the next sweep deletes what is left."""
    for key in dict.fromkeys(keys):
        stmt = _insert(s)(PendingObjectRow).values(
            key=key, context=context, blob_sha256=None, created_at=now(), claimed_at=now()
        )
        s.execute(stmt.on_conflict_do_update(index_elements=["key"], set_=dict(claimed_at=now())))


class PendingObjects:
    def __init__(self, db: Database, store: BlobStore, *, grace: int):
        self.db = db
        self.store = store
        self.grace = grace
        self._owners: list[tuple[str, Owner]] = []

    def add_owner(self, prefix: str, owner: Owner) -> None:
        """Keys under ``prefix`` may be owned by something other than an intent (an open upload session, a running
        import): ``owner`` tells which of them a live writer owns, so the sweep leaves their unfinished writes."""
        self._owners.append((prefix, owner))

    # --- fresh objects ------------------------------------------------------------------------
    def announce(self, key: str, context: str, *, check: Callable[[Session], None] | None = None) -> None:
        """Commit the intent for ``key`` (before its first byte is written). ``check`` runs first in the same
        transaction (the writer's permission check: when it raises, there is no intent and no byte is read)."""
        with self.db.uow() as s:
            if check is not None:
                check(s)
            s.add(PendingObjectRow(key=key, context=context[:64], blob_sha256=None, created_at=now(), claimed_at=None))

    def refresh(self, key: str) -> bool:
        """The writer of ``key`` is alive: restart its grace period. False if the row is gone or claimed."""
        with self.db.uow() as s:
            return (
                s.execute(
                    update(PendingObjectRow)
                    .where(PendingObjectRow.key == key, PendingObjectRow.claimed_at.is_(None))
                    .values(created_at=now())
                ).rowcount
                == 1
            )

    @contextlib.asynccontextmanager
    async def alive(self, key: str) -> AsyncIterator[None]:
        """While the body runs, refresh the intent every third of the grace period (a write of any length)."""
        task = asyncio.get_running_loop().create_task(self._heartbeat(key))
        try:
            yield
        finally:
            task.cancel()

    async def _heartbeat(self, key: str) -> None:
        interval = max(self.grace / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(self.refresh, key)
            except Exception:  # the database is briefly unreachable: try again next time
                log.warning("could not refresh the intent of %s", key, exc_info=True)

    async def written(self, key: str, write: Awaitable[T]) -> T:
        """Await the write of ``key``; if it fails because its intent lapsed (the sweep claimed it and removed the
        unfinished write), raise the Conflict its commit would have met rather than the store's error."""
        try:
            return await write
        except HarborError:
            raise
        except Exception as exc:
            if await asyncio.to_thread(self._lapsed, key):
                raise Conflict(LAPSED) from exc
            raise

    def _lapsed(self, key: str) -> bool:
        with self.db.uow(readonly=True) as s:
            row = s.get(PendingObjectRow, key)
            return row is None or row.claimed_at is not None

    @staticmethod
    def settle_in(s: Session, keys: Iterable[str]) -> None:
        """Within the transaction that makes a blob point at ``keys``: drop their intents.

        Raises Conflict (and so rolls the commit back) if an intent is missing or claimed by the sweep — its bytes
        may already be gone.
        """
        keys = list(dict.fromkeys(keys))
        if not keys:
            return
        n = s.execute(
            delete(PendingObjectRow).where(PendingObjectRow.key.in_(keys), PendingObjectRow.claimed_at.is_(None))
        ).rowcount
        if n != len(keys):
            raise Conflict(LAPSED)

    async def forget(self, keys: Iterable[str]) -> None:
        """Drop the intents of objects already deleted (best effort: the sweep removes what remains)."""
        keys = list(dict.fromkeys(keys))
        if not keys:
            return
        try:
            await asyncio.to_thread(self._forget, keys)
        except Exception:
            log.warning("could not drop the intents of %d deleted objects; the sweep will", len(keys), exc_info=True)

    def _forget(self, keys: list[str]) -> None:
        with self.db.uow() as s:
            s.execute(delete(PendingObjectRow).where(PendingObjectRow.key.in_(keys)))

    # --- the sweep ----------------------------------------------------------------------------
    async def sweep(self, *, batches: int = 50) -> int:
        """Delete the bytes no blob references of intents past their grace period, then the unfinished writes no
        live writer owns (:meth:`sweep_unfinished`); returns how many intents went."""
        done = await self._sweep_intents(batches)
        try:
            await self.sweep_unfinished()
        except Exception as exc:  # e.g. S3 credentials without ListBucketMultipartUploads: the rest still sweeps
            log.warning(
                "could not sweep unfinished writes (the next sweep tries again): %s: %s", type(exc).__name__, exc
            )
        return done

    async def sweep_unfinished(self) -> int:
        """Remove the staging files (local) and incomplete multipart uploads (S3) idle for longer than the grace
        period whose key no live writer owns; returns how many went."""
        idle_since = time.time() - self.grace
        writes = await self.store.unfinished(idle_since=idle_since)
        if not writes:
            return 0
        owned = await asyncio.to_thread(self._owned, [w.key for w in writes])
        gone = await self.store.discard([w for w in writes if w.key not in owned], idle_since=idle_since)
        if gone:
            size = sum(w.size for w in writes if w.key not in owned)
            log.info("removed %d unfinished writes (%d bytes) crashed writers left", gone, size)
        return gone

    def _owned(self, keys: list[str]) -> set[str]:
        """The keys a live writer owns: an unclaimed intent refreshed within the grace period, or a registered
        owner's say."""
        owned: set[str] = set()
        fresh = now() - timedelta(seconds=self.grace)
        with self.db.uow(readonly=True) as s:
            for i in range(0, len(keys), 500):
                batch = keys[i : i + 500]
                owned.update(
                    s.scalars(
                        select(PendingObjectRow.key).where(
                            PendingObjectRow.key.in_(batch),
                            PendingObjectRow.claimed_at.is_(None),
                            PendingObjectRow.created_at >= fresh,
                        )
                    )
                )
            for prefix, owner in self._owners:
                mine = [k for k in keys if k.startswith(prefix) and k not in owned]
                if mine:
                    owned.update(owner(s, mine))
        return owned

    async def _sweep_intents(self, batches: int) -> int:
        await asyncio.to_thread(self._claim)
        done = 0
        for _ in range(batches):
            rows = await asyncio.to_thread(self._claimed)
            if not rows:
                break
            for key, context, keep_blob in rows:
                keep = await asyncio.to_thread(self._referenced, key, context, keep_blob)
                if key.endswith("/"):
                    victims = [k for k in await self.store.list(key) if k not in keep]
                else:
                    victims = [] if key in keep else [key]
                if victims:
                    await self.store.delete(victims)
            await asyncio.to_thread(self._forget, [k for k, _, _ in rows])
            done += len(rows)
        return done

    def _claim(self) -> None:
        with self.db.uow() as s:
            s.execute(
                update(PendingObjectRow)
                .where(
                    PendingObjectRow.claimed_at.is_(None),
                    PendingObjectRow.created_at < now() - timedelta(seconds=self.grace),
                )
                .values(claimed_at=now())
            )

    def _claimed(self) -> list[tuple[str, str, str | None]]:
        with self.db.uow(readonly=True) as s:
            rows = s.execute(
                select(PendingObjectRow.key, PendingObjectRow.context, PendingObjectRow.blob_sha256)
                .where(PendingObjectRow.claimed_at.is_not(None))
                .order_by(PendingObjectRow.claimed_at, PendingObjectRow.key)
                .limit(SWEEP_BATCH)
            ).all()
            return [(k, c, b) for k, c, b in rows]

    def _referenced(self, key: str, context: str, keep_blob: str | None) -> set[str]:
        """Store keys under ``key`` (a key or a prefix) some blob points at.

        A claimed fresh key cannot be referenced (its commit would have failed), and released keys belonged to a
        blob row that is gone (keys are never reused); a fresh key is nevertheless checked against every blob's
        segments (a text search, run only for crash orphans), a prefix against the blob it names.
        """
        if key.endswith("/"):
            if keep_blob is None:
                return set()
            with self.db.uow(readonly=True) as s:
                blob = s.get(BlobRow, keep_blob)
                return {k for k, _ in blob.segments if k.startswith(key)} if blob is not None else set()
        if context == RELEASED:
            return set()
        with self.db.uow(readonly=True) as s:
            segments = s.scalars(
                select(BlobRow.segments).where(cast(BlobRow.segments, String).contains(key, autoescape=True))
            )
            return {key} if any(k == key for seg in segments for k, _ in seg) else set()
