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


BLOCKED = "x"  # TreeEdit.kind: a parent of the path is a file


class _Dir:
    __slots__ = ("entries", "children", "dirty")

    def __init__(self, entries: list[Entry]):
        self.entries = entries
        self.children: dict[str, _Dir] = {}  # the sub-directories opened by this edit
        self.dirty = False  # a file was put in it or below it


class TreeEdit:
    """Many files set in a tree at once, each directory node loaded at most once and each changed one written once at
    :meth:`commit` (``put_file`` per file would write the nodes of every ancestor for every file): how a dataset
    upload lands its files (core/dataset_uploads.py). :meth:`kind` sees the files put so far."""

    def __init__(self, s: Session, project_id: str, root: str | None):
        self.s, self.project_id, self.root = s, project_id, root
        self.top = _Dir(load(s, project_id, root))

    def _child(self, d: _Dir, name: str, *, create: bool) -> _Dir | str | None:
        """The sub-directory ``name`` of ``d`` (opened once); else None (nothing there; with ``create`` a new
        directory) or BLOCKED (a file there)."""
        child = d.children.get(name)
        if child is not None:
            return child
        i = _find(d.entries, name)
        if i is None:
            if not create:
                return None
            child = _Dir([])
        elif d.entries[i][1] == FILE:
            return BLOCKED
        else:
            child = _Dir(load(self.s, self.project_id, d.entries[i][2]))
        d.children[name] = child
        return child

    def kind(self, parts: list[str]) -> str | None:
        """What ``parts`` names now: FILE, DIR, None (nothing) or BLOCKED (one of its parents is a file)."""
        d = self.top
        for name in parts[:-1]:
            child = self._child(d, name, create=False)
            if not isinstance(child, _Dir):
                return child
            d = child
        if parts[-1] in d.children:
            return DIR
        i = _find(d.entries, parts[-1])
        return None if i is None else d.entries[i][1]

    def put(self, parts: list[str], key: str, size: int, modified_ms: int) -> None:
        """Set the file ``parts`` to blob ``key``; where :meth:`kind` says DIR or BLOCKED, a 400."""
        d, path = self.top, [self.top]
        for name in parts[:-1]:
            child = self._child(d, name, create=True)
            if not isinstance(child, _Dir):
                raise InvalidInput(f"'path': {'/'.join(parts)!r}: a parent is a file", field="path")
            d = child
            path.append(d)
        if self.kind(parts) == DIR:
            raise InvalidInput(f"'path': {'/'.join(parts)!r} is a directory", field="path")
        _set(d.entries, [parts[-1], FILE, key, size, modified_ms])
        for node in path:
            node.dirty = True

    def commit(self, modified_ms: int) -> str | None:
        """Store the changed nodes; the new root's hash (the old one when nothing was put)."""
        if not self.top.dirty:
            return self.root

        def write(d: _Dir) -> str:
            for name, child in d.children.items():
                if child.dirty:
                    _set(d.entries, [name, DIR, write(child), sum(e[3] for e in child.entries), modified_ms])
            return store(self.s, self.project_id, d.entries)

        return write(self.top)
