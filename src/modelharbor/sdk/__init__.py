"""Python SDK of ModelHarbor's native API, and the ``modelharbor`` command's client commands (``sdk/cli/``).

    from modelharbor.sdk import Client

    with Client() as c:  # MODELHARBOR_URL / MODELHARBOR_API_KEY, or the profile `modelharbor login` saved
        f = c.files.upload("model.safetensors")
        c.files.download(f.id, "copy.safetensors")

See docs/sdk.md.
"""

from modelharbor.sdk.client import Client
from modelharbor.sdk.datasets import DatasetDownload
from modelharbor.sdk.deploy import DeployResult
from modelharbor.sdk.errors import HarborClientError, InsecureConfigWarning
from modelharbor.sdk.registry import DownloadResult
from modelharbor.sdk.transfer import confirmation_body, missing_values

__all__ = [
    "Client",
    "DatasetDownload",
    "DeployResult",
    "DownloadResult",
    "HarborClientError",
    "InsecureConfigWarning",
    "confirmation_body",
    "missing_values",
]
