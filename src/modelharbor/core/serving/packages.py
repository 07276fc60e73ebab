"""Deployment and environment packages: unpacking archives safely (zip/tar, bounded entries and sizes, no links
or paths out of the target), finding the package root, reading ``ubiops.yaml``, and inspecting what a
deployment package holds. Pure file work: no database, no service."""

from __future__ import annotations

import ast
import hashlib
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from modelharbor.core.serving.validation import PACKAGE_MAX_ENTRIES, PACKAGE_MAX_FILE, PACKAGE_MAX_TOTAL
from modelharbor.domain.errors import HarborError


# --- packages -------------------------------------------------------------------------------------
class PackageRejected(HarborError):
    code = "PACKAGE_REJECTED"
    status = 400


def unpack_package(archive: Path, dest: Path) -> Path:
    """Unpack a deployment package (zip, or tar with any compression) safely into ``dest`` and return the
    directory holding ``deployment.py``.

    Refused: not an archive, absolute or ``..`` paths, links, devices, more than PACKAGE_MAX_ENTRIES entries, a
    file over PACKAGE_MAX_FILE or a total over PACKAGE_MAX_TOTAL (uncompressed, counted as it is written, never
    trusted from a header), no ``deployment.py`` at the top or in one top-level folder (``deployment_package``
    wins)."""
    return unpack_archive(archive, dest, _package_root)


def unpack_archive(archive: Path, dest: Path, find_root: Callable[[Path], Path]) -> Path:
    """Unpack an archive as :func:`unpack_package` does; ``find_root(top)`` names the folder that matters (or
    raises PackageRejected)."""
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        if zipfile.is_zipfile(archive):
            _unzip(archive, tmp)
        elif tarfile.is_tarfile(archive):
            _untar(archive, tmp)
        else:
            raise PackageRejected("The package is not a readable zip (or tar) file.")
        root = find_root(tmp)
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
        return dest / root.relative_to(tmp)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as exc:
        raise PackageRejected(f"The package is a damaged archive: {exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class _Budget:
    """Counts entries and bytes written while unpacking, against the package limits."""

    def __init__(self):
        self.entries = 0
        self.total = 0

    def entry(self) -> None:
        self.entries += 1
        if self.entries > PACKAGE_MAX_ENTRIES:
            raise PackageRejected(f"The package has more than {PACKAGE_MAX_ENTRIES} entries.")

    def copy(self, src, target: Path, name: str) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        with open(target, "wb") as out:
            while chunk := src.read(1 << 20):
                written += len(chunk)
                self.total += len(chunk)
                if written > PACKAGE_MAX_FILE:
                    raise PackageRejected(f"{name!r} is larger than {PACKAGE_MAX_FILE} bytes.")
                if self.total > PACKAGE_MAX_TOTAL:
                    raise PackageRejected(f"The package unpacks to more than {PACKAGE_MAX_TOTAL} bytes.")
                out.write(chunk)


def _safe_target(top: Path, name: str) -> Path:
    clean = name.replace("\\", "/")
    parts = PurePosixPath(clean).parts
    if clean.startswith("/") or (parts and ":" in parts[0]) or ".." in parts:
        raise PackageRejected(f"The package holds an unsafe path {name!r}.")
    return top.joinpath(*[p for p in parts if p not in ("", ".")]) if parts else top


def _unzip(archive: Path, top: Path) -> None:
    budget = _Budget()
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            budget.entry()
            target = _safe_target(top, info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise PackageRejected(f"The package holds a symbolic link {info.filename!r}.")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            with zf.open(info) as src:
                budget.copy(src, target, info.filename)


def _untar(archive: Path, top: Path) -> None:
    budget = _Budget()
    with tarfile.open(archive, mode="r:*") as tf:
        while (member := tf.next()) is not None:
            budget.entry()
            target = _safe_target(top, member.name)
            if member.issym() or member.islnk():
                raise PackageRejected(f"The package holds a link {member.name!r}.")
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            if not member.isfile():
                raise PackageRejected(f"The package holds a device or FIFO {member.name!r}.")
            src = tf.extractfile(member)
            if src is not None:
                with src:
                    budget.copy(src, target, member.name)


def _package_root(top: Path) -> Path:
    if (top / "deployment.py").is_file():
        return top
    dirs = [p for p in top.iterdir() if p.is_dir() and not p.name.startswith(("__MACOSX", "."))]
    named = [d for d in dirs if d.name == "deployment_package"]
    candidates = named or dirs
    for d in candidates:
        if (d / "deployment.py").is_file():
            if len(candidates) > 1 and not named:
                continue
            return d
    raise PackageRejected(
        "The package has no deployment.py: put it at the top of the zip or in one top-level folder "
        "(named deployment_package when there are several)."
    )


def check_ubiops_yaml(text: str, where: str) -> list[str]:
    """Read a package's ``ubiops.yaml``; PackageRejected for what cannot be honoured here: ``apt`` packages (keys,
    sources), build-time ``environment_variables``. Returns notes about keys that are ignored."""
    import yaml  # a dependency; imported here as only builds need it

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        doc = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PackageRejected(f"{where} is not valid YAML: {first}") from None
    except (ValueError, RecursionError) as exc:
        raise PackageRejected(f"{where} cannot be read: {exc}") from None
    if doc is None:
        return []
    if not isinstance(doc, dict):
        raise PackageRejected(f"{where} must hold a mapping (apt, environment_variables).")
    apt = doc.get("apt")
    if apt:
        wanted: list[str] = []
        parts = apt.items() if isinstance(apt, dict) else [("packages", apt)]
        for key, value in parts:
            key = str(key)[:64]
            if isinstance(value, dict):
                value = [x for v in value.values() for x in (v if isinstance(v, list) else [v]) if x]
            items = value if isinstance(value, list) else [value]
            # names only: a value that is not text (maybe an alias of a huge structure) is never printed
            names = [item[:100] if isinstance(item, str) else f"<{type(item).__name__}>" for item in items if item]
            wanted += [f"{key}: {name}" if key != "packages" else name for name in names]
        if wanted:
            shown = ", ".join(wanted[:10]) + (", …" if len(wanted) > 10 else "")
            raise PackageRejected(
                f"{where} asks for apt packages ({shown}): system packages are not supported here — environments "
                "are Python virtual environments; list Python packages in requirements.txt and leave 'apt' out."
            )
    if doc.get("environment_variables"):
        raise PackageRejected(
            f"{where} sets environment_variables for the build: not supported here — pip uses the server's own "
            "configuration (index, certificates); leave 'environment_variables' out."
        )
    return [f"{where}: {str(key)[:64]!r} is ignored" for key in doc if key not in ("apt", "environment_variables")]


def environment_key(base: str, requirements: str | None) -> str:
    """The builder's key of the environment ``base`` + ``requirements``: one is built per distinct pair."""
    return "env-" + hashlib.sha256(f"{base}\n{requirements or ''}".encode()).hexdigest()[:24]


def inspect_deployment(root: Path) -> tuple[bool, bool]:
    """(has request, has requests) of the Deployment class in deployment.py, read without running it."""
    source = (root / "deployment.py").read_text(errors="replace")
    try:
        tree = ast.parse(source, filename="deployment.py")
    except SyntaxError as exc:
        raise PackageRejected(f"deployment.py has a syntax error on line {exc.lineno}: {exc.msg}") from None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Deployment":
            methods = {n.name for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
            if "request" not in methods and "requests" not in methods:
                raise PackageRejected("The Deployment class in deployment.py has no request(self, data) method.")
            return "request" in methods, "requests" in methods
    raise PackageRejected("deployment.py defines no class named Deployment.")
