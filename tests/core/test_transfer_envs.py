"""Exports and imports of custom environments with their tags and environment packages: the layout, round trips
(with and without confirmation) where the imported tag is built from its package and the version runs on it,
versions naming tags nobody has, older zips without tags, and hostile environment packages. One real build (a
small wheel from the machine's package index), shared by the module's builder cache."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from dataclasses import replace

import pytest
import yaml

from modelharbor.api.inputs import deployment_in, version_in
from modelharbor.compute.environments import LocalEnvironmentBuilder
from modelharbor.db.tables_serving import EnvironmentBuildRow
from modelharbor.domain.errors import InvalidInput
from modelharbor.tasks.runner import run_pending
from tests.core.test_transfer import INFO, counts, crafted, export_zip, import_bytes, members
from tests.core.test_transfer_staging import assert_no_orphans, staged_keys
from tests.factories import member_of_new_org

USES_APPDIRS = """
import appdirs

class Deployment:
    def __init__(self, base_directory, context):
        pass

    def request(self, data):
        return {"m": data["n"] + 1, "appdirs": appdirs.__version__}
"""
REQUIREMENTS = "appdirs==1.4.4\n"
ENV_DIR = "environments/environment_science/"
TAG_ZIP = ENV_DIR + "tags/environment_science_tag_gpu-v2.zip"
VERSION_YAML = "deployments/deployment_plus/versions/deployment_plus_version_v1.yaml"


def zip_bytes(files: dict[str, str], top: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(f"{top}/{name}", data)
    return buf.getvalue()


async def chunks(data: bytes):
    yield data


ENV_PACKAGE = zip_bytes({"requirements.txt": REQUIREMENTS}, "environment_package")


@pytest.fixture(scope="module")
def shared_environments(tmp_path_factory):
    return tmp_path_factory.mktemp("environments")


@pytest.fixture
def tr(services):
    return services.transfer


@pytest.fixture
def sv(services):
    yield services.serving
    services.serving.shutdown()


@pytest.fixture
def owner(services, shared_environments):
    services.serving.builder = LocalEnvironmentBuilder(shared_environments, timeout=300)
    return member_of_new_org(services, "member")


@pytest.fixture
def science(services, sv, owner):
    """Project ``src``: environment ``science`` whose tag ``gpu-v2`` was built from a package installing appdirs
    (and tag ``bare``, never built); deployment ``plus`` whose version ``v1`` runs on ``gpu-v2``. Empty ``dst``."""
    tags = sv.environment_tags
    services.projects.create_project(owner, "src")
    services.projects.create_project(owner, "dst")
    base = sv.system_environments()[-1]
    sv.create_environment(owner, "src", name="science", description="with appdirs", base_environment=base)
    tags.create_tag(owner, "src", "science", "gpu-v2", supports_request_format=False)
    tags.create_tag(owner, "src", "science", "bare")
    file_id = asyncio.run(tags.store_package(owner, "src", "science", "gpu-v2", chunks(ENV_PACKAGE), "env.zip"))
    asyncio.run(tags.build_package(owner, "src", "science", "gpu-v2", file_id))
    run_pending(services)
    built = tags.get_tag(owner, "src", "science", "gpu-v2")
    assert built.status == "success", built.error_message
    sv.create_deployment(
        owner,
        "src",
        deployment_in(
            {
                "name": "plus",
                "input_fields": [{"name": "n", "data_type": "int"}],
                "output_fields": [{"name": "m", "data_type": "int"}, {"name": "appdirs", "data_type": "string"}],
            }
        ),
    )
    sv.create_version(
        owner,
        "src",
        "plus",
        version_in(
            {"version": "v1", "environment": "science", "environment_tag": "gpu-v2", "maximum_idle_time": 30},
            creating=True,
        ),
    )
    package = zip_bytes({"deployment.py": USES_APPDIRS}, "deployment_package")
    asyncio.run(sv.upload_revision(owner, "src", "plus", "v1", chunks(package), "p.zip"))
    run_pending(services)
    assert sv.get_version(owner, "src", "plus", "v1").status == "available"
    return {"owner": owner, "base": base}


def root_of(data: bytes) -> str:
    return next(n for n in members(data) if n.endswith("/info.yaml")).rsplit("/", 1)[0] + "/"


def assert_runs_on_the_tag(services, sv, owner, project: str) -> None:
    tags = sv.environment_tags
    assert [t.name for t in tags.list_tags(owner, project, "science")] == ["latest", "gpu-v2", "bare"]
    tag = tags.get_tag(owner, project, "science", "gpu-v2")
    assert (tag.status, tag.built, tag.size, tag.supports_request_format) == ("success", True, len(ENV_PACKAGE), False)
    assert dict(tags.dependency_files(owner, project, "science", "gpu-v2"))["requirements.txt"] == REQUIREMENTS
    assert not tags.get_tag(owner, project, "science", "bare").built
    assert not tags.get_tag(owner, project, "science", "latest").built
    v = sv.get_version(owner, project, "plus", "v1")
    assert (v.environment, v.environment_tag, v.status) == ("science", "gpu-v2", "available")
    answer = asyncio.run(sv.request(owner, project, "plus", {"n": 1}))
    assert answer.status == "completed", answer.error_message
    assert answer.result == {"m": 2, "appdirs": "1.4.4"}


# --- exports ----------------------------------------------------------------------------------------
def test_export_holds_the_tags_their_packages_and_the_versions_tag(services, sv, tr, science):
    owner, base = science["owner"], science["base"]
    _, data = export_zip(services, owner, all_objects=True)
    files, root = members(data), root_of(data)
    env = yaml.safe_load(files[root + ENV_DIR + "environment_science.yaml"])
    assert env["environment_name"] == "science" and env["base_environment"] == base
    assert env["environment_tags"] == [
        {"tag_name": "latest", "supports_request_format": True, "base_environment": None},
        {"tag_name": "gpu-v2", "supports_request_format": False, "base_environment": base},
        {"tag_name": "bare", "supports_request_format": True, "base_environment": None},
    ]
    assert files[root + TAG_ZIP] == ENV_PACKAGE  # the package as uploaded; no other tag has one
    assert [n for n in files if "/tags/" in n] == [root + TAG_ZIP]
    assert yaml.safe_load(files[root + VERSION_YAML])["environment_tag"] == "gpu-v2"

    # a tag whose newest build failed exports its newest successful build (what its versions run on)
    tags = sv.environment_tags
    broken = zip_bytes({"install.sh": "echo no"}, "environment_package")
    file_id = asyncio.run(tags.store_package(owner, "src", "science", "gpu-v2", chunks(broken), "env.zip"))
    asyncio.run(tags.build_package(owner, "src", "science", "gpu-v2", file_id, base_environment=base))
    run_pending(services)
    assert tags.get_tag(owner, "src", "science", "gpu-v2").status == "failed"
    _, data = export_zip(services, owner, all_objects=True)
    assert members(data)[root_of(data) + TAG_ZIP] == ENV_PACKAGE

    # packages=False leaves environment packages out too; the tags are still listed
    _, data = export_zip(services, owner, all_objects=True, packages=False)
    files, root = members(data), root_of(data)
    assert not [n for n in files if n.endswith(".zip")]
    env = yaml.safe_load(files[root + ENV_DIR + "environment_science.yaml"])
    assert [t["tag_name"] for t in env["environment_tags"]] == ["latest", "gpu-v2", "bare"]


# --- imports ----------------------------------------------------------------------------------------
def test_round_trip_with_confirmation_builds_the_tag_and_the_version_runs_on_it(services, sv, tr, science):
    owner = science["owner"]
    _, data = export_zip(services, owner, all_objects=True)
    imp = import_bytes(services, owner, "dst", data)
    assert imp.status == "confirmation", imp.error_message
    env = imp.content["environments"]["science"]
    assert list(env["tags"]) == ["latest", "gpu-v2", "bare"]
    assert env["tags"]["gpu-v2"] == {
        "zip": TAG_ZIP,
        "base_environment": science["base"],
        "supports_request_format": False,
    }
    assert env["tags"]["bare"]["zip"] is None
    assert imp.content["deployments"]["plus"]["versions"]["v1"]["environment_tag"] == "gpu-v2"
    # environments taken as in the zip ({}), deployments as the detail shows them
    body = {"environments": {"science": {}}, "deployments": json.loads(json.dumps(imp.content["deployments"]))}
    tr.confirm_import(owner, "dst", imp.id, body)
    run_pending(services)
    imp = tr.get_import(owner, "dst", imp.id)
    assert imp.status == "completed", imp.error_message
    assert imp.content["environments"]["science"]["tags"]["gpu-v2"]["zip"] == TAG_ZIP
    assert_runs_on_the_tag(services, sv, owner, "dst")
    assert_no_orphans(services)


def test_round_trip_without_confirmation(services, sv, tr, science):
    owner = science["owner"]
    _, data = export_zip(services, owner, all_objects=True)
    imp = import_bytes(services, owner, "dst", data, skip=True)
    assert imp.status == "completed", imp.error_message
    assert_runs_on_the_tag(services, sv, owner, "dst")
    assert staged_keys(services) == []  # (the organisation holds the packages: linked, not written again)
    assert_no_orphans(services)


def test_a_version_naming_a_tag_nobody_has_fails_the_import_naming_it(services, sv, tr, science):
    owner = science["owner"]
    _, data = export_zip(services, owner, all_objects=True)
    imp = import_bytes(services, owner, "dst", data)
    deployments = json.loads(json.dumps(imp.content["deployments"]))
    # the environment is imported, but without the tag the version names
    tr.confirm_import(
        owner, "dst", imp.id, {"environments": {"science": {"tags": {"latest": {}}}}, "deployments": deployments}
    )
    run_pending(services)
    imp = tr.get_import(owner, "dst", imp.id)
    assert imp.status == "failed" and "unknown environment tag 'gpu-v2'" in imp.error_message, imp.error_message
    assert counts(services, "dst") == (0, 0, 0, 0)

    # the project has the environment, without that tag
    sv.create_environment(owner, "dst", name="science")
    imp = import_bytes(services, owner, "dst", data)
    tr.confirm_import(owner, "dst", imp.id, {"deployments": deployments})
    run_pending(services)
    imp = tr.get_import(owner, "dst", imp.id)
    assert imp.status == "failed" and "unknown environment tag 'gpu-v2'" in imp.error_message, imp.error_message
    assert counts(services, "dst") == (0, 0, 1, 0)

    # ... and with it: the version lands on the project's tag
    sv.environment_tags.create_tag(owner, "dst", "science", "gpu-v2")
    imp = import_bytes(services, owner, "dst", data)
    tr.confirm_import(owner, "dst", imp.id, {"deployments": deployments})
    run_pending(services)
    imp = tr.get_import(owner, "dst", imp.id)
    assert imp.status == "completed", imp.error_message
    assert sv.get_version(owner, "dst", "plus", "v1").environment_tag == "gpu-v2"

    # a tag on a base environment
    deployments["plus"]["versions"]["v1"]["environment"] = science["base"]
    imp = import_bytes(services, owner, "dst", data)
    tr.confirm_import(owner, "dst", imp.id, {"deployments": {"plus2": deployments["plus"]}})
    run_pending(services)
    imp = tr.get_import(owner, "dst", imp.id)
    assert imp.status == "failed" and "a base environment has one tag" in imp.error_message, imp.error_message


def test_a_tag_package_the_zip_does_not_hold_is_refused_at_confirmation(services, tr, science):
    owner = science["owner"]
    _, data = export_zip(services, owner, body={"environments": {"science": {}}}, packages=False)
    imp = import_bytes(services, owner, "dst", data)
    assert imp.content["environments"]["science"]["tags"]["gpu-v2"]["zip"] is None
    with pytest.raises(InvalidInput, match="no package"):
        tr.confirm_import(owner, "dst", imp.id, {"environments": {"science": {"tags": {"gpu-v2": {"zip": TAG_ZIP}}}}})
    with pytest.raises(InvalidInput, match="tag name"):
        tr.confirm_import(owner, "dst", imp.id, {"environments": {"science": {"tags": {"-bad": {}}}}})
    # without packages the tags come back unbuilt
    tr.confirm_import(owner, "dst", imp.id, {"environments": {"science": {}}})
    run_pending(services)
    assert tr.get_import(owner, "dst", imp.id).status == "completed"
    tags = services.serving.environment_tags.list_tags(owner, "dst", "science")
    assert [(t.name, t.built, t.supports_request_format) for t in tags] == [
        ("latest", False, True),
        ("gpu-v2", False, False),
        ("bare", False, True),
    ]


def test_an_older_zip_without_tags_still_imports(services, owner, tr, sv):
    services.projects.create_project(owner, "dst")
    data = crafted(
        [
            ("exp/info.yaml", INFO),
            ("exp/environments/environment_old/environment_old.yaml", "environment_name: old\n"),
            ("exp/deployments/deployment_d1/deployment_d1.yaml", "deployment_name: d1\ninput_type: plain\n"),
            (
                "exp/deployments/deployment_d1/versions/deployment_d1_version_v1.yaml",
                "version_name: v1\nenvironment: old\n",
            ),
        ]
    )
    imp = import_bytes(services, owner, "dst", data, skip=True)
    assert imp.status == "completed", imp.error_message
    assert [t.name for t in sv.environment_tags.list_tags(owner, "dst", "old")] == ["latest"]
    v = sv.get_version(owner, "dst", "d1", "v1")
    assert (v.environment, v.environment_tag) == ("old", "latest")


def env_zip(package: bytes | None = None, *, entry: str = "exp/" + TAG_ZIP, stored=False) -> bytes:
    tags = "environment_tags:\n  - tag_name: gpu-v2\n"
    entries = [
        ("exp/info.yaml", INFO),
        ("exp/" + ENV_DIR + "environment_science.yaml", "environment_name: science\n" + tags),
    ]
    if package is not None:
        info = zipfile.ZipInfo(entry)
        info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
        entries.append((info, package))
    return crafted(entries)


@pytest.mark.parametrize("skip", [True, False])
def test_an_environment_package_new_to_the_organisation_is_written_once(services, owner, tr, sv, skip, monkeypatch):
    """Through the staging of deployment packages: written by the scan (skip_confirmation), else once after the
    confirmation; then the tag builds from it."""
    services.projects.create_project(owner, "dst")
    imp = import_bytes(services, owner, "dst", env_zip(ENV_PACKAGE), skip=skip, run=False)
    reads, original = [], tr._stage_member
    monkeypatch.setattr(tr, "_stage_member", lambda *a: reads.append(a[2]) or original(*a))
    run_pending(services)
    if not skip:
        tr.confirm_import(owner, "dst", imp.id, {"environments": {"science": {}}})
        run_pending(services)
    imp = tr.get_import(owner, "dst", imp.id)
    assert imp.status == "completed", imp.error_message
    assert reads == ([] if skip else ["exp/" + TAG_ZIP])
    tag = sv.environment_tags.get_tag(owner, "dst", "science", "gpu-v2")
    assert (tag.status, tag.built, tag.size) == ("success", True, len(ENV_PACKAGE)), tag.error_message
    assert len(staged_keys(services)) == 1  # the package's bytes, where its file points
    assert_no_orphans(services)


@pytest.mark.parametrize("skip", [True, False])
def test_an_oversized_environment_package_fails_the_import_and_creates_nothing(services, owner, tr, sv, skip):
    services.projects.create_project(owner, "dst")
    sv.max_package_size = 10_000
    big = zip_bytes({"requirements.txt": REQUIREMENTS, "pad.bin": "x" * 50_000}, "environment_package")
    imp = import_bytes(services, owner, "dst", env_zip(big, stored=True), skip=skip)
    if not skip:
        assert imp.status == "confirmation", imp.error_message
        tr.confirm_import(owner, "dst", imp.id, {"environments": {"science": {}}})
        run_pending(services)
        imp = tr.get_import(owner, "dst", imp.id)
    assert imp.status == "failed" and "at most 10000 bytes" in imp.error_message, imp.error_message
    assert counts(services, "dst") == (0, 0, 0, 0)
    with services.db.uow(readonly=True) as s:
        assert s.query(EnvironmentBuildRow).count() == 0
    assert_no_orphans(services)


@pytest.mark.parametrize(
    "case,reason",
    [("traversal", "unsafe path"), ("bomb", "unpacks to more than"), ("damaged", "damaged")],
)
def test_hostile_environment_packages_fail_the_scan(services, owner, tr, case, reason):
    services.projects.create_project(owner, "dst")
    tr.limits = replace(tr.limits, max_unpacked=2 << 20)
    if case == "traversal":
        data = env_zip(ENV_PACKAGE, entry="exp/environments/environment_science/tags/../../../../evil.zip")
    elif case == "bomb":
        data = env_zip(b"\0" * (8 << 20))
    else:
        noise = bytes(range(256)) * 400
        data = bytearray(env_zip(noise, stored=True))
        at = data.find(noise) + 50_000
        data[at : at + 100] = b"\xff" * 100
        data = bytes(data)
    imp = import_bytes(services, owner, "dst", data, skip=True)
    assert imp.status == "failed" and reason in imp.error_message, imp.error_message
    assert counts(services, "dst") == (0, 0, 0, 0)
    assert_no_orphans(services)


def test_a_failing_tag_build_after_the_environment_was_made_undoes_it(services, owner, tr, sv, monkeypatch):
    services.projects.create_project(owner, "dst")

    def refuse(*a, **k):
        raise RuntimeError("no builds today")

    monkeypatch.setattr(sv.environment_tags, "new_build", refuse)
    imp = import_bytes(services, owner, "dst", env_zip(ENV_PACKAGE), skip=True)
    assert imp.status == "failed" and "no builds today" in imp.error_message, imp.error_message
    assert counts(services, "dst") == (0, 0, 0, 0)
    assert_no_orphans(services)
