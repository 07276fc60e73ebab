"""Content-addressed directory nodes: the structure that lets commits share everything they did not change.

A node is one directory's entries, sorted by name, each ``[name, kind, ref, size, modified_ms]``: ``kind`` ``"d"``
(``ref`` the child node's hash, ``size`` the bytes below it) or ``"f"`` (``ref`` the blob key). It is stored once
per project under the SHA-1 of its canonical JSON (``project_file_trees``), so a node is written only when a
directory's entries change: writing one file writes the nodes of the directories on its path (its own and each
ancestor up to the root) and reuses every other node of the previous commit. Reading a path walks one primary-key
lookup per directory on it, whatever the project's size or history.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from modelharbor.db.tables_project_files import ProjectFileTreeRow
from modelharbor.domain.errors import InvalidInput, NotFound

DIR, FILE = "d", "f"
Entry = list  # [name, kind, ref, size, modified_ms]


@dataclass(frozen=True)
class Found:
    """What a path names at a commit: a directory's entries, or one file's entry (``entries`` then that one)."""

    is_dir: bool
    entries: list[Entry]


def encode(entries: list[Entry]) -> tuple[str, str]:
    text = json.dumps(entries, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha1(text.encode()).hexdigest(), text


def load(s: Session, project_id: str, tree: str | None) -> list[Entry]:
    if tree is None:
        return []
    T = ProjectFileTreeRow
    text = s.execute(select(T.entries).where(T.project_id == project_id, T.hash == tree)).scalar()
    if text is None:  # pragma: no cover - a commit always points at stored nodes
        raise NotFound(f"directory node {tree} is missing")
    return json.loads(text)


def store(s: Session, project_id: str, entries: list[Entry]) -> str:
    """Insert the node unless the project has it (concurrency-safe); its hash."""
    digest, text = encode(entries)
    ins = postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert
    s.execute(
        ins(ProjectFileTreeRow)
        .values(project_id=project_id, hash=digest, entries=text)
        .on_conflict_do_nothing(index_elements=["project_id", "hash"])
    )
    return digest


def _find(entries: list[Entry], name: str) -> int | None:
    i = bisect.bisect_left(entries, name, key=lambda e: e[0])
    return i if i < len(entries) and entries[i][0] == name else None


def lookup(s: Session, project_id: str, root: str | None, parts: list[str], *, shown: str) -> Found:
    """The directory or file ``parts`` names under the node ``root``; NotFound naming ``shown`` if none."""
    entries = load(s, project_id, root)
    for depth, name in enumerate(parts):
        i = _find(entries, name)
        if i is None:
            raise NotFound(f"no file or directory {shown!r} at this commit")
        entry = entries[i]
        if entry[1] == FILE:
            if depth != len(parts) - 1:
                raise NotFound(f"no file or directory {shown!r} at this commit")
            return Found(False, [entry])
        entries = load(s, project_id, entry[2])
    return Found(True, entries)


def put_file(
    s: Session, project_id: str, root: str | None, parts: list[str], key: str, size: int, modified_ms: int
) -> str | None:
    """Store the nodes of the tree ``root`` with the file ``parts`` set to blob ``key``; the new root's hash, or
    None when the file already has this content (nothing would change: an empty commit)."""
    path_nodes: list[list[Entry]] = [load(s, project_id, root)]
    for depth, name in enumerate(parts[:-1]):
        i = _find(path_nodes[-1], name)
        if i is None:
            path_nodes.append([])
            continue
        entry = path_nodes[-1][i]
        if entry[1] == FILE:
            raise InvalidInput(f"'path': {'/'.join(parts[: depth + 1])!r} is a file, not a directory", field="path")
        path_nodes.append(load(s, project_id, entry[2]))
    leaf = parts[-1]
    i = _find(path_nodes[-1], leaf)
    if i is not None:
        old = path_nodes[-1][i]
        if old[1] == DIR:
            raise InvalidInput(f"'path': {'/'.join(parts)!r} is a directory", field="path")
        if old[2] == key:
            return None
    child: Entry = [leaf, FILE, key, size, modified_ms]
    for depth in range(len(parts) - 1, -1, -1):
        node = path_nodes[depth]
        _set(node, child)
        if depth == 0:
            return store(s, project_id, node)
        child = [parts[depth - 1], DIR, store(s, project_id, node), sum(e[3] for e in node), modified_ms]
    raise AssertionError("unreachable")  # pragma: no cover


def _set(entries: list[Entry], entry: Entry) -> None:
    i = _find(entries, entry[0])
    if i is None:
        bisect.insort(entries, entry, key=lambda e: e[0])
    else:
        entries[i] = entry


def put_entry(s: Session, project_id: str, root: str | None, parts: list[str], entry: Entry) -> str:
    """Store the nodes of the tree ``root`` with ``entry`` (a file's or a directory's, named ``parts[-1]``) at
    ``parts``, replacing what was there; the new root's hash. Copies no node below ``entry``: how a dataset snapshot
    of some paths is built from its head (core/datasets.py)."""
    path_nodes: list[list[Entry]] = [load(s, project_id, root)]
    for depth, name in enumerate(parts[:-1]):
        i = _find(path_nodes[-1], name)
        if i is None:
            path_nodes.append([])
        elif path_nodes[-1][i][1] == FILE:
            raise InvalidInput(f"'path': {'/'.join(parts[: depth + 1])!r} is a file, not a directory", field="path")
        else:
            path_nodes.append(load(s, project_id, path_nodes[-1][i][2]))
    child: Entry = [parts[-1], *entry[1:]]
    for depth in range(len(parts) - 1, -1, -1):
        node = path_nodes[depth]
        _set(node, child)
        if depth == 0:
            return store(s, project_id, node)
        child = [parts[depth - 1], DIR, store(s, project_id, node), sum(e[3] for e in node), entry[4]]
    raise AssertionError("unreachable")  # pragma: no cover
