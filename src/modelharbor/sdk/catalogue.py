"""``client.catalogue``: the pretrained-model catalogue — models, frameworks, licences, domains, a model's data."""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from modelharbor.sdk.errors import HarborClientError, invalid
from modelharbor.sdk.transfers import Counter, Progress, check_unchanged, fetch_verified, read_hashed, stat_file
from modelharbor.sdk.transfers import target_path as _target
from modelharbor.sdk.wire import CatalogueModel, Domain, Framework, Licence

if TYPE_CHECKING:
    from modelharbor.sdk.client import Client


def _pk(pk: Any) -> str:
    if isinstance(pk, bool) or not isinstance(pk, int | str) or not str(pk).isdecimal():
        raise invalid(f"a model pk is a positive whole number, not {pk!r}")
    return str(int(pk))


class Catalogue:
    """``/api/v1/catalogue``."""

    def __init__(self, client: Client):
        self._client = client
        self._t = client._transport

    def list(
        self,
        *,
        include_inactive: bool = False,
        name_contains: str | None = None,
        framework: int | str | None = None,
        domain: str | None = None,
        licence: str | None = None,
        spec: dict[str, Any] | None = None,
    ) -> list[CatalogueModel]:
        """The organisation's models. ``spec`` (a full filter spec, UFDL's language) replaces the simple filters."""
        if spec is not None:
            return self._t.call(list[CatalogueModel], "POST", "/catalogue/models/search", json=spec)
        params: dict[str, Any] = {
            "name_contains": name_contains,
            "framework": framework,
            "domain": domain,
            "licence": licence,
        }
        params = {k: v for k, v in params.items() if v is not None}
        if include_inactive:
            params["include_inactive"] = "true"
        return self._t.call(list[CatalogueModel], "GET", "/catalogue/models", params=params)

    def get(self, pk: int) -> CatalogueModel:
        return self._t.call(CatalogueModel, "GET", f"/catalogue/models/{_pk(pk)}")

    def create(
        self,
        *,
        name: str,
        url: str,
        framework: int,
        domain: str,
        licence: str,
        description: str | None = None,
        metadata: str | None = None,
    ) -> CatalogueModel:
        """Create a model: ``framework`` is a framework pk, ``domain`` a domain code, ``licence`` a licence name."""
        body: dict[str, Any] = {"name": name, "url": url, "framework": framework, "domain": domain, "licence": licence}
        if description is not None:
            body["description"] = description
        if metadata is not None:
            body["metadata"] = metadata
        return self._t.call(CatalogueModel, "POST", "/catalogue/models", json=body)

    def update(self, pk: int, **fields: Any) -> CatalogueModel:
        """Change some fields of a model."""
        return self._t.call(CatalogueModel, "PATCH", f"/catalogue/models/{_pk(pk)}", json=fields)

    def delete(self, pk: int, *, hard: bool = False) -> CatalogueModel:
        """Soft-delete a model (``hard=True``: delete it and its data for good). Returns the model."""
        params = {"hard": "true"} if hard else {}
        return self._t.call(CatalogueModel, "DELETE", f"/catalogue/models/{_pk(pk)}", params=params)

    def reinstate(self, pk: int) -> CatalogueModel:
        return self._t.call(CatalogueModel, "POST", f"/catalogue/models/{_pk(pk)}/reinstate")

    def frameworks(self) -> list[Framework]:
        return self._t.call(list[Framework], "GET", "/catalogue/frameworks")

    def licences(self) -> list[Licence]:
        return self._t.call(list[Licence], "GET", "/catalogue/licences")

    def domains(self) -> list[Domain]:
        return self._t.call(list[Domain], "GET", "/catalogue/domains")

    def framework_pk(self, text: str | int) -> int:
        """A framework's pk from ``PK``, ``NAME`` (when it has one version) or ``NAME:VERSION``."""
        text = str(text).strip()
        if text.isdecimal():
            return int(text)
        name, _, version = text.partition(":")
        matches = [f for f in self.frameworks() if f.name == name and (not version or f.version == version)]
        if len(matches) == 1:
            return matches[0].pk
        if not matches:
            raise HarborClientError(
                0, "UNKNOWN_FRAMEWORK", f"no framework {text!r}; see the pks with `modelharbor catalogue frameworks`"
            )
        versions = ", ".join(f"{f.name}:{f.version} (pk {f.pk})" for f in matches)
        raise HarborClientError(0, "AMBIGUOUS_FRAMEWORK", f"framework {text!r} has several versions: {versions}")

    def data_from_file(self, pk: int, file_id: str) -> CatalogueModel:
        """Use an already-uploaded file as the model's data; no bytes are sent."""
        return self._t.call(
            CatalogueModel, "POST", f"/catalogue/models/{_pk(pk)}/data/from-file", json={"file_id": file_id}
        )

    def delete_data(self, pk: int) -> CatalogueModel:
        return self._t.call(CatalogueModel, "DELETE", f"/catalogue/models/{_pk(pk)}/data")

    def push_data(
        self, pk: int, path: str | os.PathLike[str], *, filename: str | None = None, progress: Progress | None = None
    ) -> CatalogueModel:
        """Send ``path`` as the model's data (streamed from disk in 1 MiB pieces, with a Content-Length) and check
        the server's SHA-256 against the local one. Returns the model."""
        src = Path(path).expanduser()
        st = stat_file(src)
        size = st.st_size
        url = f"/catalogue/models/{_pk(pk)}/data"
        headers = {"content-length": str(size), "content-type": "application/octet-stream"}
        sent: dict[str, Any] = {}

        def body() -> dict[str, Any]:
            sent["sha256"] = h = hashlib.sha256()
            counter = Counter(size, progress)
            counter.add(0)
            return {"content": read_hashed(src, size, h, counter)}

        # storing the last bytes may take a while on the server: no read timeout
        model = self._t.parse(
            CatalogueModel,
            self._t.request(
                "PUT",
                url,
                params={"filename": filename or src.name},
                headers=headers,
                timeout=httpx.Timeout(self._t.timeout, read=None),
                per_attempt=body,
            ).json(),
            f"PUT {url}",
        )
        check_unchanged(src, size, st.st_mtime_ns)
        local, remote = sent["sha256"].hexdigest(), model.data.sha256 if model.data else None
        if remote != local:
            raise HarborClientError(
                0,
                "CHECKSUM_MISMATCH",
                f"SHA-256 mismatch after sending the data: local {local}, server {remote}; push the data again",
                {"local_sha256": local, "server_sha256": remote},
            )
        return model

    def pull_data(
        self, pk: int, dest: str | os.PathLike[str] | None = None, *, progress: Progress | None = None
    ) -> Path:
        """Download a model's data to ``dest`` (a path, or a directory to put the data file's name in; default: the
        current directory). Resumes ``<dest>.part`` left by an interrupted run; verifies the SHA-256."""
        model = self.get(pk)
        data = model.data
        if data is None:
            raise HarborClientError(404, "NO_DATA", f"pretrained model {pk} has no data")
        name = f"model-{model.pk}.data"
        if dest is None or Path(dest).expanduser().is_dir() or str(dest).endswith(("/", os.sep)):
            with contextlib.suppress(HarborClientError):
                name = self._client.files.get(data.file_id).name
        target = _target(dest, name, f"model-{model.pk}.data")
        return fetch_verified(self._t, f"/catalogue/models/{_pk(pk)}/data", target, data.size, data.sha256, progress)
