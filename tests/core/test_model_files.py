"""Version files: resolving a version's source (models:/, runs:/, mlflow-artifacts:/, modelharbor:/files/) for the
caller only, registering a version from uploaded files in one transaction, and releasing them again."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from modelharbor.core.registry.model_files import (
    MAX_VERSION_FILES,
    REGISTERED_TAG,
    UnsupportedSource,
    check_files,
    in_use_by,
)
from modelharbor.db.tables import FileRow
from modelharbor.db.tables_registry import ModelVersionRow, RegisteredModelRow
from modelharbor.db.tables_tracking import ArtifactRow, LoggedModelRow
from modelharbor.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from modelharbor.domain.inputs import VersionFileIn
from modelharbor.domain.principal import Role
from tests.factories import member_of_new_org


@pytest.fixture
def mf(services):
    return services.model_files


def upload(services, principal, data: bytes, name: str = "f.bin"):
    async def body():
        yield data

    return asyncio.run(services.files.upload(principal, name=name, data=body()))


def put_artifact(services, principal, path: str, data: bytes):
    async def body():
        yield data

    return asyncio.run(services.artifacts.put(principal, path, body()))


def count(services, table) -> int:
    with services.db.uow(readonly=True) as s:
        return s.scalar(select(func.count()).select_from(table))


def context_of(services, file_id: str) -> str:
    with services.db.uow(readonly=True) as s:
        return s.get(FileRow, file_id).context


def paths(files) -> list[str]:
    return [f.path for f in files]


# --- resolving sources ----------------------------------------------------------------------------
def test_logged_model_run_and_artifact_sources(services, mf, admin):
    exp = services.tracking.resolve_experiment_id(admin, "0")
    run = services.tracking.create_run(admin, "0")
    put_artifact(services, admin, f"{exp}/{run.id}/artifacts/model/MLmodel", b"flavors: {}")
    put_artifact(services, admin, f"{exp}/{run.id}/artifacts/model/data/w.bin", b"w" * 100)
    put_artifact(services, admin, f"{exp}/{run.id}/artifacts/notes.txt", b"n")
    lm = services.tracking.create_logged_model(admin, "0", name="m", source_run_id=run.id)
    put_artifact(services, admin, f"{exp}/models/{lm.id}/artifacts/MLmodel", b"x")
    put_artifact(services, admin, f"{exp}/models/{lm.id}/artifacts/a b/model.pkl", b"pickle")

    got = mf.resolve(admin, f"models:/{lm.id}")
    assert paths(got) == ["MLmodel", "a b/model.pkl"]
    assert got[1].size == 6 and len(got[1].sha256) == 64 and got[1].file_id

    assert paths(mf.resolve(admin, f"runs:/{run.id}/model")) == ["MLmodel", "data/w.bin"]
    assert paths(mf.resolve(admin, f"runs:/{run.id}")) == ["model/MLmodel", "model/data/w.bin", "notes.txt"]
    assert paths(mf.resolve(admin, f"runs:/{run.id}/notes.txt")) == ["notes.txt"]  # a single file: its name
    assert paths(mf.resolve(admin, f"mlflow-artifacts:/{exp}/{run.id}/artifacts/model")) == ["MLmodel", "data/w.bin"]
    assert paths(mf.resolve(admin, f"mlflow-artifacts:///{exp}/{run.id}/artifacts/model/data")) == ["w.bin"]
    assert paths(mf.resolve(admin, f"mlflow-artifacts:/{exp}/models/{lm.id}/artifacts")) == [
        "MLmodel",
        "a b/model.pkl",
    ]
    # a logged model with no files yet lists nothing; a folder with nothing in it is missing
    empty = services.tracking.create_logged_model(admin, "0", name="empty")
    assert mf.resolve(admin, f"models:/{empty.id}") == []
    for missing in (
        f"runs:/{run.id}/nothing",
        f"mlflow-artifacts:/{exp}/{run.id}/artifacts/mod",  # a prefix of a name is not a folder
        "runs:/" + "0" * 32 + "/model",
        "models:/m-" + "0" * 32,
        f"mlflow-artifacts:/{exp + 1000}/x",
    ):
        with pytest.raises(NotFound) as exc:
            mf.resolve(admin, missing)
        assert exc.value.code == "SOURCE_NOT_FOUND", missing
    services.tracking.delete_logged_model(admin, lm.id)
    with pytest.raises(NotFound):
        mf.resolve(admin, f"models:/{lm.id}")


def test_file_and_registered_version_sources(services, mf, admin):
    record = upload(services, admin, b"archive bytes", name="bot-model.tar.gz")
    got = mf.resolve(admin, f"modelharbor:/files/{record.id}")
    assert [(f.path, f.size, f.file_id) for f in got] == [("bot-model.tar.gz", 13, record.id)]
    with pytest.raises(NotFound):
        mf.resolve(admin, "modelharbor:/files/" + "0" * 24)

    reg = services.registry
    reg.create_model(admin, "base")
    reg.create_version(admin, "base", f"modelharbor:/files/{record.id}")
    reg.create_model(admin, "copy")
    reg.create_version(admin, "copy", "models:/base/1")
    reg.set_alias(admin, "base", "champion", 1)
    reg.transition_stage(admin, "base", 1, "Production")
    for src in ("models:/base/1", "models:/base@champion", "models:/base/latest", "models:/base/production"):
        assert paths(mf.resolve(admin, src)) == ["bot-model.tar.gz"], src
    assert paths(mf.version_files(admin, "copy", 1)) == ["bot-model.tar.gz"]
    for src in ("models:/base/2", "models:/base@nobody", "models:/base/Staging", "models:/nope/1"):
        with pytest.raises(NotFound) as exc:
            mf.resolve(admin, src)
        assert exc.value.code == "SOURCE_NOT_FOUND", src
    # versions naming each other in a loop end after a few hops
    reg.create_model(admin, "loop")
    reg.create_version(admin, "loop", "models:/loop/1")
    with pytest.raises(UnsupportedSource):
        mf.version_files(admin, "loop", 1)


@pytest.mark.parametrize(
    "source",
    [
        "s3://bucket/model",
        "file:///etc/passwd",
        "dbfs:/x",
        "",
        "models:/",
        "models:/only-a-name",
        "mlflow-artifacts://other.host/1/x",
        "mlflow-artifacts:/../etc",
        "mlflow-artifacts:/1/a/../b",
        "https://example.com/model.bin",
    ],
)
def test_unsupported_sources(mf, admin, source):
    with pytest.raises(UnsupportedSource) as exc:
        mf.resolve(admin, source)
    assert exc.value.code == "UNSUPPORTED_SOURCE" and exc.value.status == 409


def test_sources_never_reach_into_another_organisation(services, mf, admin):
    """Sources are free text (MLflow clients set them): pointing one at another organisation shows nothing."""
    other = member_of_new_org(services)
    exp = services.tracking.resolve_experiment_id(admin, "0")
    run = services.tracking.create_run(admin, "0")
    put_artifact(services, admin, f"{exp}/{run.id}/artifacts/model/MLmodel", b"secret")
    lm = services.tracking.create_logged_model(admin, "0")
    put_artifact(services, admin, f"{exp}/models/{lm.id}/artifacts/MLmodel", b"secret")
    record = upload(services, admin, b"secret")
    services.registry.create_model(admin, "mine")
    services.registry.create_version(admin, "mine", f"runs:/{run.id}/model")

    services.registry.create_model(other, "theirs")
    for source in (
        f"runs:/{run.id}/model",
        f"mlflow-artifacts:/{exp}/{run.id}/artifacts/model",
        f"models:/{lm.id}",
        f"modelharbor:/files/{record.id}",
        "models:/mine/1",
    ):
        services.registry.create_version(other, "theirs", source)
        with pytest.raises(NotFound):
            mf.resolve(other, source)
    with pytest.raises(NotFound):
        mf.version_files(other, "mine", 1)
    assert paths(mf.version_files(admin, "mine", 1)) == ["MLmodel"]


# --- registering from files -------------------------------------------------------------------------
def test_register_attaches_files_without_copying(services, mf, admin):
    a = upload(services, admin, b"flavors: {}", name="MLmodel")
    b = upload(services, admin, b"weights" * 1000, name="w.bin")
    blobs_before = count(services, FileRow)
    v = mf.register(
        admin,
        "my model",
        files=[VersionFileIn("MLmodel", a.id), VersionFileIn("data/w.bin", b.id)],
        description="first",
        tags={"team": "ml"},
        aliases=["champion", "champion"],
        create_model=True,
        model_description="the model",
    )
    assert (v.name, v.version, v.description, v.tags, v.aliases) == (
        "my model",
        1,
        "first",
        {"team": "ml"},
        ("champion",),
    )
    assert v.source == f"models:/{v.model_id}" and v.model_id.startswith("m-")
    assert services.registry.get_model(admin, "my model").description == "the model"
    assert count(services, FileRow) == blobs_before  # the uploaded records are used, nothing copied
    files = mf.version_files(admin, "my model", 1)
    assert [(f.path, f.file_id) for f in files] == [("MLmodel", a.id), ("data/w.bin", b.id)]
    assert context_of(services, a.id) == "mlflow-artifact"
    lm = services.tracking.get_logged_model(admin, v.model_id)
    assert lm.status == "READY" and lm.experiment_id == str(services.tracking.ensure_default(admin))
    assert lm.tags[REGISTERED_TAG] == "files"
    with services.db.uow(readonly=True) as s:
        assert in_use_by(s, a.id).startswith("artifact ")
    # the same bytes under MLflow's artifact API
    assert [e.path for e in services.artifacts.list(admin, f"{lm.experiment_id}/models/{lm.id}/artifacts")] == [
        "MLmodel",
        "data",
    ]

    # a second version of the existing model; a file already attached is refused
    c = upload(services, admin, b"v2", name="MLmodel")
    v2 = mf.register(admin, "my model", files=[VersionFileIn("MLmodel", c.id)], aliases=["champion"])
    assert v2.version == 2 and services.registry.get_version_by_alias(admin, "my model", "champion").version == 2
    with pytest.raises(Conflict) as exc:
        mf.register(admin, "my model", files=[VersionFileIn("x", a.id)])
    assert exc.value.code == "FILE_IN_USE"


def test_register_with_the_run_it_came_from(services, mf, admin):
    run = services.tracking.create_run(admin, "0")
    f = upload(services, admin, b"x")
    v = mf.register(admin, "m", files=[VersionFileIn("a", f.id)], run_id=run.id, create_model=True)
    assert v.run_id == run.id
    assert services.tracking.get_logged_model(admin, v.model_id).source_run_id == run.id
    other_run = services.tracking.create_run(member_of_new_org(services), "0")
    g = upload(services, admin, b"y")
    with pytest.raises(NotFound):
        mf.register(admin, "m", files=[VersionFileIn("a", g.id)], run_id=other_run.id)


def test_register_from_a_source(services, mf, admin):
    record = upload(services, admin, b"bytes", name="m.zip")
    v = mf.register(admin, "kore model", source=f"modelharbor:/files/{record.id}", create_model=True)
    assert v.source == f"modelharbor:/files/{record.id}" and v.model_id is None
    with services.db.uow(readonly=True) as s:
        assert in_use_by(s, record.id) == "version 1 of registered model 'kore model'"
    lm = services.tracking.create_logged_model(admin, "0")
    v2 = mf.register(admin, "kore model", source=f"models:/{lm.id}")
    assert v2.model_id == lm.id
    with pytest.raises(InvalidInput) as exc:
        mf.register(admin, "kore model", source="s3://bucket/x")
    assert exc.value.code == "UNSUPPORTED_SOURCE"
    with pytest.raises(NotFound):
        mf.register(admin, "kore model", source="modelharbor:/files/" + "0" * 24)


def test_a_failed_registration_writes_nothing(services, mf, admin):
    other = member_of_new_org(services)
    good = upload(services, admin, b"good")
    theirs = upload(services, other, b"theirs")
    mine_in_use = upload(services, admin, b"used")
    mf.register(admin, "used", files=[VersionFileIn("u", mine_in_use.id)], create_model=True)
    before = {t: count(services, t) for t in (RegisteredModelRow, ModelVersionRow, LoggedModelRow, ArtifactRow)}
    for bad, error in (
        ([VersionFileIn("a", good.id), VersionFileIn("b", theirs.id)], NotFound),
        ([VersionFileIn("a", good.id), VersionFileIn("b", "0" * 24)], NotFound),
        ([VersionFileIn("a", good.id), VersionFileIn("b", mine_in_use.id)], Conflict),
        ([VersionFileIn("a", good.id), VersionFileIn("b" * 1100, "x")], InvalidInput),
    ):
        with pytest.raises(error):
            mf.register(admin, "new model", files=bad, create_model=True, aliases=["a"])
    with pytest.raises(NotFound):  # no such model and not asked to create it
        mf.register(admin, "absent", files=[VersionFileIn("a", good.id)])
    assert {t: count(services, t) for t in before} == before
    assert context_of(services, good.id) == "" and in_use_by_tx(services, good.id) is None
    with pytest.raises(NotFound):
        services.registry.get_model(admin, "new model")


def in_use_by_tx(services, file_id):
    with services.db.uow(readonly=True) as s:
        return in_use_by(s, file_id)


@pytest.mark.parametrize(
    "files",
    [
        None,
        [],
        [VersionFileIn("../x", "f")],
        [VersionFileIn("/abs", "f")],
        [VersionFileIn("a//b", "f")],
        [VersionFileIn("a/./b", "f")],
        [VersionFileIn("a/", "f")],
        [VersionFileIn("a\\b", "f")],
        [VersionFileIn("C:/x", "f")],
        [VersionFileIn("a\x00", "f")],
        [VersionFileIn("a\nb", "f")],
        [VersionFileIn("", "f")],
        [VersionFileIn("a", "")],
        [VersionFileIn("a", "f"), VersionFileIn("a", "g")],
        [VersionFileIn("a", "f"), VersionFileIn("b", "f")],
        [VersionFileIn("a", "f"), VersionFileIn("a/b", "g")],
        [VersionFileIn(f"f{i}", f"id{i}") for i in range(MAX_VERSION_FILES + 1)],
    ],
)
def test_bad_file_lists(files, mf, admin):
    with pytest.raises(InvalidInput):
        check_files(files)
    with pytest.raises(InvalidInput):
        mf.register(admin, "m", files=files, create_model=True)


def test_check_files_accepts_clean_lists():
    assert check_files([VersionFileIn("MLmodel", "a"), VersionFileIn("data/model ü.pkl", "b")]) == [
        ("MLmodel", "a"),
        ("data/model ü.pkl", "b"),
    ]


@pytest.mark.parametrize(
    "kw",
    [
        {"aliases": ["latest"]},
        {"aliases": ["v3"]},
        {"aliases": ["bad alias"]},
        {"tags": {"bad\x00": "x"}},
        {"source": "models:/m-1"},  # both files and source
    ],
)
def test_bad_registration_arguments(services, mf, admin, kw):
    f = upload(services, admin, b"x")
    with pytest.raises(InvalidInput):
        mf.register(admin, "m", files=[VersionFileIn("a", f.id)], **{"create_model": True, **kw})


@pytest.mark.parametrize("name", ["a/b", "a:b", "", " ", "..", "x" * 300, "a\x00"])
def test_bad_model_names(services, mf, admin, name):
    f = upload(services, admin, b"x")
    with pytest.raises(InvalidInput):
        mf.register(admin, name, files=[VersionFileIn("a", f.id)], create_model=True)


def test_roles(services, mf, admin):
    f = upload(services, admin, b"x")
    services.identity.create_user(admin, "viewer", role=Role.VIEWER)
    viewer = services.identity.principal_for("viewer")
    with pytest.raises(Forbidden):
        mf.register(viewer, "m", files=[VersionFileIn("a", f.id)], create_model=True)
    mf.register(admin, "m", files=[VersionFileIn("a", f.id)], create_model=True)
    assert paths(mf.version_files(viewer, "m", 1)) == ["a"]  # viewers read
    with pytest.raises(Forbidden):
        asyncio.run(mf.delete_version(viewer, "m", 1))


# --- releasing ------------------------------------------------------------------------------------
def test_deleting_versions_releases_what_registering_created(services, mf, admin):
    a, b, c = (upload(services, admin, bytes([i]) * 10) for i in range(3))
    v1 = mf.register(admin, "m", files=[VersionFileIn("a", a.id)], create_model=True)
    mf.register(admin, "m", files=[VersionFileIn("b", b.id)])
    # a version an MLflow client registered from its own logged model: MLflow keeps logged models
    lm = services.tracking.create_logged_model(admin, "0")
    exp = services.tracking.ensure_default(admin)
    put_artifact(services, admin, f"{exp}/models/{lm.id}/artifacts/MLmodel", b"mlflow")
    services.registry.create_version(admin, "m", f"models:/{lm.id}", model_id=lm.id)
    # another model's version sharing the first logged model keeps it alive
    services.registry.create_model(admin, "other")
    services.registry.create_version(admin, "other", v1.source, model_id=v1.model_id)

    asyncio.run(mf.delete_version(admin, "m", 1))
    assert services.files.get(admin, a.id)  # still used by 'other'
    with pytest.raises(NotFound):
        services.registry.get_version(admin, "m", 1)
    asyncio.run(mf.delete_model(admin, "other"))
    with pytest.raises(NotFound):
        services.files.get(admin, a.id)
    with pytest.raises(NotFound):
        services.tracking.get_logged_model(admin, v1.model_id)

    asyncio.run(mf.delete_model(admin, "m"))
    with pytest.raises(NotFound):
        services.files.get(admin, b.id)
    assert services.tracking.get_logged_model(admin, lm.id).id == lm.id  # the MLflow one stays
    assert paths(mf.resolve(admin, f"models:/{lm.id}")) == ["MLmodel"]
    assert services.files.get(admin, c.id)  # never attached
    with pytest.raises(NotFound):
        asyncio.run(mf.delete_version(admin, "m", 1))
