"""Python SDK and CLI commands of ModelHarbor's native API.

from modelharbor.sdk import Client
with Client("http://127.0.0.1:8000", api_key) as c:
    f = c.upload("model.safetensors")
    c.download(f["id"], "copy.safetensors")
"""

from modelharbor.sdk.client import Client, HarborClientError

__all__ = ["Client", "HarborClientError"]
