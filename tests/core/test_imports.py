"""Model imports: archive checks run as a background task and move the model to ready or failed."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import struct
import tarfile
import zipfile

import pytest

from modelharbor.api.dialects.mlflow.filters import query
from modelharbor.tasks.runner import run_pending


def tar_bytes(members: dict[str, bytes], mode="w", links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)
    return buf.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


async def agen(data: bytes):
    yield data


def import_archive(services, admin, data: bytes, ext: str, chunks: int = 1):
    session, model = services.imports.start(admin, name=f"m.{ext}", total_chunks=chunks, size=len(data), extension=ext)
    assert model.status == "importing"
    step = -(-len(data) // chunks)
    for n in reversed(range(chunks)):
        asyncio.run(services.uploads.put_chunk(admin, session.id, agen(data[n * step : (n + 1) * step]), number=n))
    done = asyncio.run(services.uploads.complete(admin, session.id))
    task_id = done.result["task_id"]
    assert services.tasks.get(admin, task_id).status == "queued"
    run_pending(services)
    return services.imports.get(admin, model.id), services.tasks.get(admin, task_id)


GOOD_TAR = {"config.json": b'{"arch": "x"}', "weights/model.bin": b"\x00" * 5000}
safetensors_header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()


@pytest.mark.parametrize(
    "data,ext",
    [
        (tar_bytes(GOOD_TAR), "tar"),
        (tar_bytes(GOOD_TAR, "w:gz"), "tar.gz"),
        (tar_bytes(GOOD_TAR, "w:gz"), "tar"),  # compressed though named .tar: still a readable tar
        (tar_bytes(GOOD_TAR, links={"latest": "weights/model.bin"}), "tgz" if False else "tar"),
        (zip_bytes(GOOD_TAR), "zip"),
        (gzip.compress(b"raw weights" * 100), "gz"),
        (b"GGUF" + b"\x00" * 100, "gguf"),
        (struct.pack("<Q", len(safetensors_header)) + safetensors_header + b"\x00" * 4, "safetensors"),
        (b"\x01" * 100, "bin"),
    ],
    ids=["tar", "tar.gz", "gzipped-named-tar", "tar-with-link", "zip", "gz", "gguf", "safetensors", "bin"],
)
def test_good_archives_import(services, admin, data, ext):
    model, task = import_archive(services, admin, data, ext, chunks=3 if len(data) > 3 else 1)
    assert (model.status, task.status, task.percent) == ("ready", "succeeded", 100), task.error
    assert model.file_id and task.result["model_id"] == model.id


@pytest.mark.parametrize(
    "data,ext,reason",
    [
        (tar_bytes({"../evil": b"x"}), "tar", "'..'"),
        (tar_bytes({"/etc/passwd": b"x"}), "tar", "absolute"),
        (tar_bytes({"ok": b"x"}, links={"link": "../../etc/shadow"}), "tar", "link target"),
        (tar_bytes({"ok": b"x"}, links={"link": "/etc/shadow"}), "tar", "absolute"),
        (b"this is not an archive at all" * 50, "tar", "not a readable tar"),
        (zip_bytes({"a/../../b": b"x"}), "zip", "'..'"),
        (b"PK\x03\x04 broken", "zip", "not a readable zip"),
        (b"not gzip", "gz", "not readable gzip"),
        (b"XXXX" + b"\x00" * 10, "gguf", "GGUF"),
        (tar_bytes({}), "tar", "empty"),
    ],
)
def test_bad_archives_fail_with_reason(services, admin, data, ext, reason):
    model, task = import_archive(services, admin, data, ext)
    assert model.status == "failed" and task.status == "failed"
    assert reason in model.error and reason in task.error


def test_entry_limit(services, admin):
    services.imports.max_entries = 3
    model, _ = import_archive(services, admin, tar_bytes({f"f{i}": b"" for i in range(4)}), "tar")
    assert model.status == "failed" and "more than 3 entries" in model.error


def test_import_is_invisible_to_other_orgs(services, admin):
    from modelharbor.domain.errors import NotFound
    from tests.factories import member_of_new_org

    model, task = import_archive(services, admin, tar_bytes(GOOD_TAR), "tar")
    outsider = member_of_new_org(services)
    with pytest.raises(NotFound):
        services.imports.get(outsider, model.id)
    with pytest.raises(NotFound):
        services.tasks.get(outsider, task.id)


def test_ready_imports_land_in_the_registry(services, admin):
    model, task = import_archive(services, admin, tar_bytes(GOOD_TAR), "tar")
    assert task.result["registered_model"] == "m.tar" and task.result["version"] == 1
    version = services.registry.get_version(admin, "m.tar", 1)
    assert version.source == f"modelharbor:/files/{model.file_id}"
    assert version.tags == {"modelharbor.import_id": model.id, "modelharbor.is_adapter": "false"}
    again, _ = import_archive(services, admin, zip_bytes(GOOD_TAR), "zip")
    assert services.registry.get_model(admin, "m.zip").name == "m.zip"  # another name, another model


def test_reimport_adds_a_version_and_a_retried_task_does_not(services, admin):
    first, _ = import_archive(services, admin, tar_bytes(GOOD_TAR), "tar")
    second, task = import_archive(services, admin, tar_bytes({"other": b"y"}), "tar")
    assert task.result["version"] == 2
    assert services.registry.get_version(admin, "m.tar", 2).tags["modelharbor.import_id"] == second.id
    # the task runs again (e.g. its runner died after registering): no third version
    from modelharbor.domain.entities import Task

    replay = Task(**{**services.tasks.get(admin, task.id).__dict__})
    assert services.imports.process(replay, lambda _pct: None)["version"] == 2
    assert [v.version for v in services.registry.search_versions(admin, query("name = 'm.tar'")).items] == [2, 1]


def test_failed_imports_register_nothing(services, admin):
    model, _ = import_archive(services, admin, tar_bytes({"../evil": b"x"}), "tar")
    assert model.status == "failed"
    assert services.registry.search_models(admin).items == ()


def test_registry_names_from_import_names():
    from modelharbor.core.catalogue import registry_name

    assert registry_name("meta-llama/Llama-3:8b", "abcdef1234") == "meta-llama-Llama-3-8b"
    assert registry_name("..", "abcdef1234") == "import-abcdef12"
    assert registry_name("   ", "abcdef1234") == "import-abcdef12"
