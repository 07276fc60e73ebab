"""``Client``: a ModelHarbor server's native API (``/api/v1``), one sub-client per noun.

    from modelharbor.sdk import Client

    with Client() as c:                      # MODELHARBOR_URL / MODELHARBOR_API_KEY, else `modelharbor login`'s profile
        f = c.files.upload("model.safetensors")
        c.files.download(f.id, "copy.safetensors")
        c.models.register("resnet", "./resnet")

Every call returns typed objects (the native API's own schemas, see :mod:`modelharbor.sdk.wire`) and raises
:class:`~modelharbor.sdk.errors.HarborClientError` with a message that says what to do.
"""

from __future__ import annotations

import os
from pathlib import Path

from modelharbor import __version__
from modelharbor.sdk.access_requests import AccessRequests
from modelharbor.sdk.catalogue import Catalogue
from modelharbor.sdk.config import resolve
from modelharbor.sdk.data_sources import DataSources
from modelharbor.sdk.datasets import Datasets
from modelharbor.sdk.deployments import Deployments
from modelharbor.sdk.env import EnvVars
from modelharbor.sdk.files import Files
from modelharbor.sdk.hardware_tiers import HardwareTiers
from modelharbor.sdk.http import Transport
from modelharbor.sdk.identity import Keys, Orgs, Tasks, Users
from modelharbor.sdk.pipelines import Pipelines
from modelharbor.sdk.project_files import ProjectFiles
from modelharbor.sdk.projects import Projects
from modelharbor.sdk.registry import Models
from modelharbor.sdk.transfer import Transfer
from modelharbor.sdk.uploads import Uploads
from modelharbor.sdk.wire import Me


class Client:
    """``Client(url=None, api_key=None, profile=None)``: a ModelHarbor server.

    The server and key come, in this order, from the arguments, the named ``profile`` of the config file, the
    environment (``MODELHARBOR_URL``, ``MODELHARBOR_API_KEY``), then ``MODELHARBOR_PROFILE`` or the config file's
    default profile (``modelharbor login`` writes it; see :mod:`modelharbor.sdk.config`). Without any, the URL is
    ``http://127.0.0.1:8000`` and there is no key (calls that need one answer "run `modelharbor login`").

    Sub-clients: ``files``, ``uploads``, ``catalogue``, ``models`` (the registry), ``projects``, ``project_files``
    (a project's versioned files), ``deployments``, ``env``, ``pipelines``, ``transfer`` (exports and imports),
    ``keys``, ``users``, ``orgs``, ``tasks``, ``hardware_tiers``, ``access_requests``, ``data_sources``,
    ``datasets``.
    """

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        profile: str | None = None,
        *,
        timeout: float = 60.0,
        config_path: str | os.PathLike[str] | None = None,
    ):
        found = resolve(url, api_key, profile, path=Path(config_path) if config_path else None)
        self.url = found.url
        self.api_key = found.api_key
        self.profile = found.profile
        self.key_source = found.key_source
        self.timeout = timeout
        self._transport = Transport(found.url, found.api_key, timeout=timeout, key_source=found.key_source)
        self.files = Files(self)
        self.uploads = Uploads(self)
        self.catalogue = Catalogue(self)
        self.models = Models(self)
        self.projects = Projects(self)
        self.project_files = ProjectFiles(self)
        self.deployments = Deployments(self)
        self.env = EnvVars(self)
        self.pipelines = Pipelines(self)
        self.transfer = Transfer(self)
        self.keys = Keys(self)
        self.users = Users(self)
        self.orgs = Orgs(self)
        self.tasks = Tasks(self)
        self.hardware_tiers = HardwareTiers(self)
        self.data_sources = DataSources(self)
        self.datasets = Datasets(self)
        self.access_requests = AccessRequests(self)

    def __repr__(self) -> str:
        return f"Client(url={self.url!r}, profile={self.profile!r})"

    def me(self) -> Me:
        """Who the key acts as: user, organisation, role, superuser."""
        return self._transport.call(Me, "GET", "/me")

    def server_version(self) -> str | None:
        """The server's ModelHarbor version (``GET /healthz``), or None when it does not say."""
        return self._transport.server_version()

    @property
    def version(self) -> str:
        """This client's version."""
        return __version__

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
