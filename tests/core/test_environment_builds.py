"""Environment tags and their builds: tag rules, environment package checks, real builds (a small wheel from the
machine's package index) that deployment versions then run in, waiting and failing revisions, rebuilds."""

from __future__ import annotations

import asyncio
import io
import zipfile

import pytest

from modelharbor.api.inputs import deployment_in, tag_in, version_in
from modelharbor.compute.environments import LocalEnvironmentBuilder
from modelharbor.core.serving import PackageRejected, check_ubiops_yaml, environment_key
from modelharbor.core.serving.environment_tags import read_environment_package
from modelharbor.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from modelharbor.tasks.runner import run_one, run_pending
from tests.factories import in_same_org, member_of_new_org

USES_APPDIRS = """
import sys
import appdirs

class Deployment:
    def __init__(self, base_directory, context):
        pass

    def request(self, data):
        return {"m": data["n"] + 1, "appdirs": appdirs.__version__, "prefix": sys.prefix}
"""


def zip_bytes(files: dict[str, str], top: str = "environment_package") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(f"{top}/{name}" if top else name, data)
    return buf.getvalue()


async def chunks(data: bytes):
    yield data


@pytest.fixture(scope="module")
def shared_environments(tmp_path_factory):
    """One builder cache for the module: a venv is built once for all its tests (as on a real server)."""
    return tmp_path_factory.mktemp("environments")


@pytest.fixture
def owner(services, shared_environments):
    services.serving.builder = LocalEnvironmentBuilder(shared_environments, timeout=300)
    return member_of_new_org(services, "member")


@pytest.fixture
def project(services, owner):
    return services.projects.create_project(owner, "envs")


@pytest.fixture
def sv(services):
    yield services.serving
    services.serving.shutdown()


@pytest.fixture
def tags(sv):
    return sv.environment_tags


def build(services, owner, env, tag, files, top="environment_package", **base):
    tags = services.serving.environment_tags
    file_id = asyncio.run(tags.store_package(owner, "envs", env, tag, chunks(zip_bytes(files, top)), "env.zip"))
    asyncio.run(tags.build_package(owner, "envs", env, tag, file_id, **base))


def deploy(sv, owner, version_body, name="plus"):
    if name not in [d.name for d in sv.list_deployments(owner, "envs")]:
        sv.create_deployment(
            owner,
            "envs",
            deployment_in(
                {
                    "name": name,
                    "input_fields": [{"name": "n", "data_type": "int"}],
                    "output_fields": [
                        {"name": "m", "data_type": "int"},
                        {"name": "appdirs", "data_type": "string"},
                        {"name": "prefix", "data_type": "string"},
                    ],
                }
            ),
        )
    return sv.create_version(owner, "envs", name, version_in({"maximum_idle_time": 30, **version_body}, creating=True))


def upload(sv, owner, version, code=USES_APPDIRS, name="plus", extra=None):
    package = zip_bytes({"deployment.py": code, **(extra or {})}, top="deployment_package")
    return asyncio.run(sv.upload_revision(owner, "envs", name, version, chunks(package), "pkg.zip"))


def create_tag(tags, who, environment: str, body: dict):
    """A tag made as UbiOps' route makes it: its body parsed at the edge (api/inputs.py), then the core call."""
    name, supports, status = tag_in(body, creating=True)
    return tags.create_tag(who, "envs", environment, name, supports_request_format=bool(supports), status=status)


def update_tag(tags, who, environment: str, tag: str, body: dict):
    _, supports, status = tag_in(body, creating=False)
    return tags.update_tag(who, "envs", environment, tag, status=status, supports_request_format=supports)


def test_tags_of_environments(sv, tags, owner, project, services):
    base = sv.list_environments(owner, "envs", system=True)[-1].name
    assert [(t.name, t.status, t.system) for t in tags.list_tags(owner, "envs", base)] == [("latest", "success", True)]
    with pytest.raises(InvalidInput):  # base environments cannot be changed
        create_tag(tags, owner, base, {"name": "mine"})
    with pytest.raises(NotFound):
        tags.get_tag(owner, "envs", base, "v9")

    sv.create_environment(owner, "envs", name="science", base_environment=base)
    (latest,) = tags.list_tags(owner, "envs", "science")
    assert (latest.name, latest.status, latest.built, latest.base_environment) == ("latest", "success", False, base)
    v1 = create_tag(tags, owner, "science", {})
    assert (v1.name, v1.status, v1.supports_request_format) == ("v1", "success", True)
    assert create_tag(tags, owner, "science", {"supports_request_format": False}).name == "v2"
    named = create_tag(tags, owner, "science", {"name": "gpu-1.0", "status": "success"})
    assert [t.name for t in tags.list_tags(owner, "envs", "science")] == ["latest", "v1", "v2", "gpu-1.0"]
    with pytest.raises(Conflict):
        create_tag(tags, owner, "science", {"name": "v1"})
    for bad in ({"name": "-x"}, {"name": "a" * 129}, {"name": 3}, {"status": "failed"}, {"supports_request_format": 1}):
        with pytest.raises(InvalidInput):
            create_tag(tags, owner, "science", bad)
    assert not update_tag(
        tags, owner, "science", named.name, {"supports_request_format": False}
    ).supports_request_format
    with pytest.raises(InvalidInput):  # the status comes from builds
        update_tag(tags, owner, "science", "v1", {"status": "building"})
    with pytest.raises(NotFound):
        tags.get_tag(owner, "envs", "science", "nope")
    with pytest.raises(NotFound):
        tags.list_tags(owner, "envs", "no-such-env")

    viewer = in_same_org(services, owner, "viewer")
    assert len(tags.list_tags(viewer, "envs", "science")) == 4
    with pytest.raises(Forbidden):
        create_tag(tags, viewer, "science", {"name": "x"})
    with pytest.raises(Forbidden):
        tags.delete_tag(in_same_org(services, owner, "member"), "envs", "science", "v1")  # not the project's
    with pytest.raises(NotFound):
        tags.list_tags(member_of_new_org(services), "envs", "science")

    # versions name a tag: base environments only 'latest', custom ones one they have (default 'latest')
    v = deploy(sv, owner, {"version": "a", "environment_name": "science"})
    assert (v.environment, v.environment_tag) == ("science", "latest")
    assert deploy(sv, owner, {"version": "b", "environment": base}).environment_tag is None
    with pytest.raises(InvalidInput):
        deploy(sv, owner, {"version": "c", "environment_name": base, "environment_tag": "v1"})
    with pytest.raises(NotFound):
        deploy(sv, owner, {"version": "c", "environment_name": "science", "environment_tag": "nope"})
    assert (
        sv.update_version(
            owner, "envs", "plus", "a", version_in({"environment_tag": "v1"}, creating=False)
        ).environment_tag
        == "v1"
    )
    assert [(u.deployment, u.version) for u in tags.usage(owner, "envs", "science", "v1")] == [("plus", "a")]
    with pytest.raises(InvalidInput) as e:  # in use
        tags.delete_tag(owner, "envs", "science", "v1")
    assert "plus/a" in e.value.message
    tags.delete_tag(owner, "envs", "science", "v2")
    moved = sv.update_version(owner, "envs", "plus", "a", version_in({"environment_name": base}, creating=False))
    assert (moved.environment, moved.environment_tag) == (base, None)
    tags.delete_tag(owner, "envs", "science", "v1")
    assert [t.name for t in tags.list_tags(owner, "envs", "science")] == ["latest", "gpu-1.0"]


def test_environment_package_checks(tmp_path):
    def read(files, top="environment_package"):
        path = tmp_path / "p.zip"
        path.write_bytes(zip_bytes(files, top))
        notes: list[str] = []
        return read_environment_package(path, tmp_path / "out", notes.append), notes

    (requirements, files), notes = read({"requirements.txt": "appdirs\n\n", "ubiops.yaml": "apt:\n  packages: []\n"})
    assert requirements == "appdirs" and set(files) == {"requirements.txt", "ubiops.yaml"}
    assert read({"requirements.txt": "appdirs"}, top="")[0][0] == "appdirs"
    (_, files), notes = read({"requirements.txt": "x", "README.md": "hi", "ubiops.yaml": "python: 3\n"})
    assert any("README.md" in n for n in notes) and any("'python' is ignored" in n for n in notes)
    for files, why in (
        ({"ubiops.yaml": "apt:\n  packages:\n    - libgomp1\n    - git\n"}, "apt packages (libgomp1, git)"),
        ({"ubiops.yaml": "apt:\n  keys:\n    urls: [https://example.org/key]\n"}, "apt packages"),
        ({"ubiops.yaml": "environment_variables:\n  - PIP_INDEX_URL=https://example.org\n"}, "environment_variables"),
        ({"ubiops.yaml": "apt: [\n"}, "not valid YAML"),
        ({"ubiops.yaml": "- a list\n"}, "must hold a mapping"),
        ({"requirements.txt": "x", "install.sh": "apt-get install x"}, "install.sh"),
        ({"readme.md": "nothing to build"}, "no requirements.txt"),
        ({"../evil": "x", "requirements.txt": "x"}, "unsafe path"),
    ):
        with pytest.raises(PackageRejected) as e:
            read(files, top="" if "../evil" in files else "environment_package")
        assert why in e.value.message, e.value.message
    assert not (tmp_path / "out").exists()  # unpacked only while it is read
    assert check_ubiops_yaml("", "ubiops.yaml") == []


def test_build_a_tag_and_run_a_version_in_it(sv, tags, owner, project, services, shared_environments):
    sv.create_environment(owner, "envs", name="science")
    create_tag(tags, owner, "science", {"name": "v1"})
    build(services, owner, "science", "v1", {"requirements.txt": "appdirs==1.4.4\n", "ubiops.yaml": "apt: {}\n"})
    queued = tags.get_tag(owner, "envs", "science", "v1")
    assert (queued.status, queued.built, queued.size) == ("queued", True, queued.size) and queued.size > 0
    run_pending(services)
    built = tags.get_tag(owner, "envs", "science", "v1")
    assert built.status == "success", built.error_message
    assert dict(tags.dependency_files(owner, "envs", "science", "v1"))["requirements.txt"] == "appdirs==1.4.4\n"
    log = tags.build_log(owner, "envs", "science", "v1")
    assert "appdirs" in log and "environment science:v1 is ready" in log
    base = built.base_environment
    assert (shared_environments / environment_key(base, "appdirs==1.4.4")).is_dir()  # the builder's cache
    venvs = {p.name for p in shared_environments.iterdir() if p.is_dir()}

    deploy(sv, owner, {"version": "v1", "environment_name": "science", "environment_tag": "v1"})
    rev = upload(sv, owner, "v1")
    run_pending(services)
    rev = sv.get_revision(owner, "envs", "plus", "v1", rev.id)
    assert rev.status == "success", rev.error_message
    assert {p.name for p in shared_environments.iterdir() if p.is_dir()} == venvs  # the tag's venv, reused
    answer = asyncio.run(sv.request(owner, "envs", "plus", {"n": 1}))
    assert answer.status == "completed", answer.error_message
    assert answer.result["m"] == 2 and answer.result["appdirs"] == "1.4.4"
    assert answer.result["prefix"].startswith(str(shared_environments))

    # the package's own requirements.txt is added to the tag's: one more environment, built once
    deploy(sv, owner, {"version": "v2", "environment_name": "science", "environment_tag": "v1"})
    own = upload(sv, owner, "v2", extra={"requirements.txt": "toolz\n"})
    run_pending(services)
    assert sv.get_revision(owner, "envs", "plus", "v2", own.id).status == "success"
    assert (shared_environments / environment_key(base, "appdirs==1.4.4\ntoolz")).is_dir()

    # a rebuild builds the same package again; meanwhile the version keeps serving
    again = sv.rebuild_revision(owner, "envs", "plus", "v1", rev.id)
    assert again.status == "queued" and sv.get_version(owner, "envs", "plus", "v1").status == "processing"
    with pytest.raises(InvalidInput):  # once at a time
        sv.rebuild_revision(owner, "envs", "plus", "v1", rev.id)
    assert asyncio.run(sv.request(owner, "envs", "plus", {"n": 2})).result["m"] == 3
    run_pending(services)
    assert sv.get_revision(owner, "envs", "plus", "v1", rev.id).status == "success"
    with pytest.raises(NotFound):
        sv.rebuild_revision(owner, "envs", "plus", "v1", "no-such-revision")
    with pytest.raises(Forbidden):
        sv.rebuild_revision(in_same_org(services, owner, "viewer"), "envs", "plus", "v1", rev.id)

    # rebuilding the tag rebuilds the versions on it
    tags.rebuild(owner, "envs", "science", "v1")
    assert tags.get_tag(owner, "envs", "science", "v1").status == "queued"
    run_one(services)  # the tag
    assert sv.get_revision(owner, "envs", "plus", "v1", rev.id).status == "queued"
    run_pending(services)
    assert [sv.get_revision(owner, "envs", "plus", v, r.id).status for v, r in (("v1", rev), ("v2", own))] == [
        "success",
        "success",
    ]
    assert asyncio.run(sv.request(owner, "envs", "plus", {"n": 5})).result["m"] == 6

    with pytest.raises(InvalidInput):  # in use
        tags.delete_tag(owner, "envs", "science", "v1")
    with pytest.raises(InvalidInput):
        sv.delete_environment(owner, "envs", "science")
    file_id = tags.package_file(owner, "envs", "science", "v1")
    services.serving.delete_project(owner, "envs")
    with pytest.raises(NotFound):  # the environment package went with the project
        services.files.get(owner, file_id)


def test_a_revision_waits_for_its_tag_and_fails_with_it(sv, tags, owner, project, services):
    sv.create_environment(owner, "envs", name="lab")
    deploy(sv, owner, {"version": "v1", "environment_name": "lab"})
    rev = upload(sv, owner, "v1")  # queued before the tag's build
    build(services, owner, "lab", "latest", {"requirements.txt": "appdirs==1.4.4\n"})
    assert run_one(services).kind == "serving_build"
    waiting = sv.get_revision(owner, "envs", "plus", "v1", rev.id)
    assert waiting.status == "queued" and "waiting" in sv.revision_log(owner, "envs", "plus", "v1", rev.id)
    run_pending(services)  # the tag builds, then the revision
    assert sv.get_revision(owner, "envs", "plus", "v1", rev.id).status == "success"
    assert asyncio.run(sv.request(owner, "envs", "plus", {"n": 1})).result["appdirs"] == "1.4.4"

    # a tag whose build fails: its error and log; revisions waiting for it fail with it; serving goes on
    build(services, owner, "lab", "latest", {"requirements.txt": "appdirs==0.0.0.999\n"})
    second = upload(sv, owner, "v1")
    run_pending(services)
    failed = tags.get_tag(owner, "envs", "lab", "latest")
    assert failed.status == "failed" and "appdirs==0.0.0.999" in failed.error_message
    assert len(failed.error_message) <= 1024
    assert "build failed" in tags.build_log(owner, "envs", "lab", "latest")
    rejected = sv.get_revision(owner, "envs", "plus", "v1", second.id)
    assert rejected.status == "failed" and "lab:latest failed to build" in rejected.error_message
    v = sv.get_version(owner, "envs", "plus", "v1")
    assert (v.status, v.active_revision) == ("available", rev.id)
    assert asyncio.run(sv.request(owner, "envs", "plus", {"n": 2})).result["m"] == 3

    # apt packages fail the build at once, naming them
    build(
        services, owner, "lab", "latest", {"requirements.txt": "", "ubiops.yaml": "apt:\n  packages: [libsndfile1]\n"}
    )
    run_pending(services)
    apt = tags.get_tag(owner, "envs", "lab", "latest")
    assert apt.status == "failed" and "libsndfile1" in apt.error_message

    # a version moved to another tag builds its latest revision again, there (no appdirs in a tag never built)
    create_tag(tags, owner, "lab", {"name": "plain"})
    sv.update_version(owner, "envs", "plus", "v1", version_in({"environment_tag": "plain"}, creating=False))
    assert sv.get_revision(owner, "envs", "plus", "v1", second.id).status == "queued"
    run_pending(services)
    moved = sv.get_revision(owner, "envs", "plus", "v1", second.id)
    assert moved.status == "failed" and "No module named 'appdirs'" in moved.error_message

    # a deployment package's ubiops.yaml is held to the same rule as an environment package's
    third = upload(sv, owner, "v1", extra={"ubiops.yaml": "apt:\n  packages: [git]\n"})
    run_pending(services)
    third = sv.get_revision(owner, "envs", "plus", "v1", third.id)
    assert third.status == "failed" and "apt packages (git)" in third.error_message


def test_build_requests_that_are_refused(sv, tags, owner, project, services):
    sv.create_environment(owner, "envs", name="lab")
    base = sv.list_environments(owner, "envs", system=True)[-1].name

    def attempt(**kw):
        return asyncio.run(tags.store_package(owner, "envs", "lab", "latest", chunks(b"PK"), "env.zip", **kw))

    for kw in ({"base_environment": "python0-1"}, {"base_environment": "lab"}, {"base_environment_tag": "v2"}):
        with pytest.raises(InvalidInput):
            attempt(**kw)
    with pytest.raises(InvalidInput):
        asyncio.run(tags.store_package(owner, "envs", "lab", "latest", chunks(b"x"), "env.tar"))
    with pytest.raises(InvalidInput):
        asyncio.run(tags.store_package(owner, "envs", base, "latest", chunks(b"x"), "env.zip"))
    with pytest.raises(NotFound):
        asyncio.run(tags.store_package(owner, "envs", "lab", "nope", chunks(b"x"), "env.zip"))
    with pytest.raises(Forbidden):
        asyncio.run(
            tags.store_package(in_same_org(services, owner, "viewer"), "envs", "lab", "latest", chunks(b"x"), "e.zip")
        )
    with pytest.raises(InvalidInput):  # nothing to rebuild or copy yet
        tags.rebuild(owner, "envs", "lab", "latest")
    create_tag(tags, owner, "lab", {"name": "copy"})
    with pytest.raises(InvalidInput):
        tags.copy_build(owner, "envs", "lab", "copy", "lab", "latest")
    with pytest.raises(NotFound):
        tags.package_file(owner, "envs", "lab", "latest")

    # a broken zip is accepted, and its build fails saying so; a copy reuses the bytes
    file_id = attempt(base_environment=base, base_environment_tag="latest")
    asyncio.run(tags.build_package(owner, "envs", "lab", "latest", file_id))
    tags.copy_build(owner, "envs", "lab", "copy", "lab", "latest")
    assert tags.package_file(owner, "envs", "lab", "copy") == file_id
    run_pending(services)
    for name in ("latest", "copy"):
        broken = tags.get_tag(owner, "envs", "lab", name)
        assert broken.status == "failed" and "not a readable zip" in broken.error_message
    tags.delete_tag(owner, "envs", "lab", "copy")
    assert services.files.get(owner, file_id).id == file_id  # still the package of 'latest'
    sv.delete_environment(owner, "envs", "lab")
    with pytest.raises(NotFound):
        services.files.get(owner, file_id)


def test_environment_revisions_of_older_clients(sv, tags, owner, project, services):
    """API v2.1's environment revisions and builds are the builds of the tag 'latest'."""
    base = sv.list_environments(owner, "envs", system=True)[-1].name
    assert tags.list_revisions(owner, "envs", base) == []
    sv.create_environment(owner, "envs", name="old")
    assert tags.list_revisions(owner, "envs", "old") == []
    env = sv.get_environment(owner, "envs", "old")
    assert (env.latest_revision, env.latest_build, env.active_revision, env.active_build) == (None,) * 4
    build(services, owner, "old", "latest", {"requirements.txt": "appdirs==1.4.4\n"})
    (revision,) = tags.list_revisions(owner, "envs", "old")
    assert (revision.environment, revision.created_by) == ("old", owner.user_id)
    env = sv.get_environment(owner, "envs", "old")
    assert (env.latest_revision, env.latest_build, env.active_build) == (revision.id, revision.id, None)
    run_pending(services)
    (first,) = tags.list_builds(owner, "envs", "old", revision.id)
    assert (first.id, first.revision, first.status, first.trigger) == (
        revision.id,
        revision.id,
        "success",
        "environment package upload",
    )
    again = tags.rebuild_environment_revision(owner, "envs", "old", revision.id)
    assert (again.revision, again.status, again.trigger) == (revision.id, "queued", "rebuild")
    with pytest.raises(InvalidInput):  # one build at a time
        tags.rebuild_environment_revision(owner, "envs", "old", revision.id)
    env = sv.get_environment(owner, "envs", "old")
    assert (env.latest_build, env.active_build) == (again.id, revision.id)
    run_pending(services)
    assert tags.get_build(owner, "envs", "old", revision.id, again.id).status == "success"
    assert [b.id for b in tags.list_builds(owner, "envs", "old", revision.id)] == [revision.id, again.id]
    assert tags.list_revisions(owner, "envs", "old") == [revision]  # a rebuild is no new revision
    assert dict(tags.build_dependency_files(owner, "envs", "old", revision.id, again.id)) == {
        "requirements.txt": "appdirs==1.4.4\n"
    }
    assert tags.revision_file(owner, "envs", "old", revision.id) == tags.package_file(owner, "envs", "old", "latest")
    for bad in (
        lambda: tags.get_revision(owner, "envs", "old", again.id),  # a build, not a revision
        lambda: tags.get_build(owner, "envs", "old", revision.id, "nope"),
        lambda: tags.list_builds(owner, "envs", base, revision.id),
        lambda: tags.get_revision(member_of_new_org(services), "envs", "old", revision.id),
    ):
        with pytest.raises(NotFound):
            bad()
