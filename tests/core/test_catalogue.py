"""The pretrained-model catalogue core: fields, soft/hard delete, data, filters, permissions, tokens."""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest

from modelharbor.api.catalogue_inputs import framework_in, model_in
from modelharbor.api.filterspec import parse_filter_spec
from modelharbor.core.catalogue import FieldErrors
from modelharbor.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from modelharbor.domain.inputs import FrameworkIn, LicenceIn, PretrainedModelIn, SubdescriptorEdit
from modelharbor.domain.principal import Role
from tests.factories import member_of_new_org

BASE = {"framework": 1, "domain": "ic", "licence": "MIT", "url": "https://x/r18", "name": "resnet18"}


async def agen(data: bytes, piece: int = 1 << 16):
    for i in range(0, len(data), piece):
        yield data[i : i + piece]


def create(services, admin, **kw):
    return services.catalogue.create_model(admin, model_in({**BASE, **kw}, partial=False))


def names(models):
    return [m.name for m in models]


def test_create_get_update_fields(services, admin):
    m = create(services, admin, description="d", metadata='{"a": 1}')
    assert (m.framework.name, m.domain.description, m.licence.name, m.file) == (
        "tensorflow",
        "Image Classification",
        "MIT",
        None,
    )
    assert m.creator_number is not None and m.deletion_time is None
    assert services.catalogue.get_model(admin, m.pk) == m
    m2 = services.catalogue.update_model(admin, m.pk, PretrainedModelIn(name="renamed"), partial=True)
    assert (m2.name, m2.url, m2.description) == ("renamed", m.url, "d")
    with pytest.raises(FieldErrors) as err:
        services.catalogue.update_model(admin, m.pk, PretrainedModelIn(name="only"), partial=False)
    assert set(err.value.details["fields"]) == {"framework", "domain", "licence", "url"}


@pytest.mark.parametrize(
    "change,field,message",
    [
        ({"framework": 999}, "framework", 'Invalid pk "999" - object does not exist.'),
        ({"framework": {"pk": 1}}, "framework", "Incorrect type. Expected pk value, received dict."),
        ({"domain": "zz"}, "domain", "Object with name=zz does not exist."),
        ({"licence": "WTFPL"}, "licence", "Object with name=WTFPL does not exist."),
        ({"name": ""}, "name", "This field may not be blank."),
        ({"name": "x" * 201}, "name", "Ensure this field has no more than 200 characters."),
        ({"url": None}, "url", "This field may not be null."),
    ],
)
def test_field_errors(services, admin, change, field, message):
    with pytest.raises(FieldErrors) as err:
        create(services, admin, **change)
    assert err.value.details["fields"][field] == [message]


def test_edge_faults_and_database_faults_answer_together(services, admin):
    """The faults the edge found travel in the typed input; the core adds its own and stores nothing."""
    fields = PretrainedModelIn(url="https://x", framework=999, domain="ic", licence=2, faults={"name": ("bad",)})
    with pytest.raises(FieldErrors) as err:
        services.catalogue.create_model(admin, fields)
    assert err.value.details["fields"] == {"name": ["bad"], "framework": ['Invalid pk "999" - object does not exist.']}
    with pytest.raises(FieldErrors) as err:  # only the edge's faults: still refused
        services.catalogue.create_model(admin, model_in({**BASE, "metadata": None}, partial=False))
    assert err.value.details["fields"] == {"metadata": ["This field may not be null."]}
    with pytest.raises(FieldErrors) as err:  # the core keeps the domain rules of the typed values
        services.catalogue.save_licence(admin, LicenceIn("", "ftp://x"))
    assert err.value.details["fields"] == {"name": ["This field may not be blank."], "url": ["Enter a valid URL."]}
    with pytest.raises(FieldErrors) as err:
        services.catalogue.save_framework(admin, framework_in({"name": "jax"}))
    assert err.value.details["fields"] == {"version": ["This field is required."]}
    assert services.catalogue.list_models(admin, parse_filter_spec({"include_inactive": True})) == []
    assert "jax" not in [f.name for f in services.catalogue.list_frameworks(admin)]
    with pytest.raises(FieldErrors, match="method"):
        services.catalogue.edit_subdescriptors(admin, 1, SubdescriptorEdit("swap", "permissions", ("x",)))


def test_soft_delete_reinstate_hard_delete(services, admin):
    a, b = create(services, admin, name="a"), create(services, admin, name="b")
    services.catalogue.soft_delete(admin, a.pk)
    assert names(services.catalogue.list_models(admin)) == ["b"]
    assert names(services.catalogue.list_models(admin, parse_filter_spec({"include_inactive": True}))) == ["a", "b"]
    assert services.catalogue.get_model(admin, a.pk).deletion_time is not None
    assert services.catalogue.reinstate(admin, a.pk).deletion_time is None
    gone = asyncio.run(services.catalogue.hard_delete(admin, b.pk))
    assert gone.name == "b"
    with pytest.raises(NotFound):
        services.catalogue.get_model(admin, b.pk)


def test_data_round_trip_replace_and_delete(services, admin):
    m = create(services, admin)
    data = os.urandom(3_000_000)
    m = asyncio.run(services.catalogue.set_data(admin, m.pk, agen(data)))
    assert (m.file.size, m.file.sha256) == (len(data), hashlib.sha256(data).hexdigest())

    async def read():
        _, _, _, stream = await services.catalogue.open_data(admin, m.pk)
        return b"".join([p async for p in stream])

    assert asyncio.run(read()) == data
    asyncio.run(services.catalogue.set_data(admin, m.pk, agen(b"v2")))
    assert asyncio.run(read()) == b"v2"
    assert len([p for p in services.store.root.rglob("*") if p.is_file()]) == 1  # old data removed

    async def failing():
        yield b"partial"
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        asyncio.run(services.catalogue.set_data(admin, m.pk, failing()))
    assert asyncio.run(read()) == b"v2"  # the previous data is intact
    m = asyncio.run(services.catalogue.delete_data(admin, m.pk))
    assert m.file is None
    assert [p for p in services.store.root.rglob("*") if p.is_file()] == []


def test_data_from_existing_file_shares_bytes(services, admin):
    f = asyncio.run(services.files.upload(admin, name="w.bin", data=agen(b"weights")))
    m = asyncio.run(services.catalogue.set_data_from_file(admin, create(services, admin).pk, f.id))
    assert m.file.sha256 == f.sha256 and m.file.id != f.id
    asyncio.run(services.files.delete(admin, f.id))  # the user's copy goes; the model keeps its data
    _, _, _, stream = asyncio.run(services.catalogue.open_data(admin, m.pk))

    async def drain():
        return b"".join([p async for p in stream])

    assert asyncio.run(drain()) == b"weights"


def test_filters(services, admin):
    create(services, admin, name="ResNet18", framework=5, domain="ic")
    create(services, admin, name="resnet50", framework=4, domain="od", licence="Apache 2.0")
    create(services, admin, name="yolo", framework=10, domain="od")
    L = lambda spec: names(services.catalogue.list_models(admin, parse_filter_spec(spec)))  # noqa: E731
    assert L({"expressions": [{"type": "contains", "field": "name", "sub_string": "resnet"}]}) == ["resnet50"]
    assert L(
        {"expressions": [{"type": "contains", "field": "name", "sub_string": "resnet", "case_insensitive": True}]}
    ) == ["ResNet18", "resnet50"]
    assert L({"expressions": [{"type": "exact", "field": "domain.name", "value": "od", "invert": True}]}) == [
        "ResNet18"
    ]
    assert L({"expressions": [{"type": "exact", "field": "framework.name", "value": "mmclassification"}]}) == [
        "ResNet18",
        "resnet50",
    ]
    assert L(
        {"expressions": [{"type": "isnull", "field": "data"}], "order_by": [{"field": "name", "ascending": False}]}
    ) == ["yolo", "resnet50", "ResNet18"]
    assert L({"expressions": [{"type": "compare", "field": "framework", "operator": ">=", "value": 5}]}) == [
        "ResNet18",
        "yolo",
    ]
    assert L(
        {
            "expressions": [
                {
                    "type": "or",
                    "sub_expressions": [
                        {"type": "exact", "field": "licence.name", "value": "Apache 2.0"},
                        {
                            "type": "and",
                            "sub_expressions": [
                                {"type": "exact", "field": "domain.name", "value": "od"},
                                {"type": "contains", "field": "name", "sub_string": "ol"},
                            ],
                        },
                    ],
                }
            ]
        }
    ) == ["resnet50", "yolo"]
    assert L({"expressions": [{"type": "is_null", "field": "deletion_time"}]}) == ["ResNet18", "resnet50", "yolo"]


@pytest.mark.parametrize(
    "spec,needle",
    [
        ({"expressions": [{"type": "exact", "field": "nope", "value": 1}]}, "unknown field 'nope'"),
        ({"expressions": [{"type": "regex", "field": "name", "value": 1}]}, "unknown expression type"),
        ({"expressions": [{"type": "exact", "field": "name"}]}, "lacks: value"),
        ({"expressions": [{"type": "exact", "field": "name", "value": 1, "x": 1}]}, "unknown key"),
        (
            {"expressions": [{"type": "and", "sub_expressions": [{"type": "exact", "field": "name", "value": "a"}]}]},
            "at least two",
        ),
        (
            {"expressions": [{"type": "and", "sub_expressions": [{"type": "or", "sub_expressions": []}, {}]}]},
            "nested 'or'",
        ),
        ({"expressions": [{"type": "compare", "field": "pk", "operator": "!=", "value": 1}]}, "operator"),
        ({"expressions": [{"type": "exact", "field": "pk", "value": "abc"}]}, "must be an integer"),
        ({"expressions": [{"type": "exact", "field": "creation_time", "value": "yesterday"}]}, "ISO-8601"),
        ({"order_by": [{"field": "name", "up": True}]}, "unknown key"),
        ({"include_inactive": "yes"}, "true or false"),
        ({"filter": {}}, "unknown filter key"),
        ([], "JSON object"),
    ],
)
def test_bad_filters(services, admin, spec, needle):
    with pytest.raises(InvalidInput, match=needle.replace("(", r"\(")):
        services.catalogue.list_models(admin, parse_filter_spec(spec))  # the UFDL grammar, then the core's fields


def test_permissions(services, admin):
    m = create(services, admin)
    services.identity.create_user(admin, "viewer", role=Role.MEMBER)
    member = services.identity.principal_for("viewer")
    assert services.catalogue.get_model(member, m.pk).pk == m.pk
    assert names(services.catalogue.list_models(member)) == ["resnet18"]
    for call in (
        lambda: create(services, member),
        lambda: services.catalogue.update_model(member, m.pk, PretrainedModelIn(name="x"), partial=True),
        lambda: services.catalogue.soft_delete(member, m.pk),
        lambda: asyncio.run(services.catalogue.set_data(member, m.pk, agen(b"x"))),
        lambda: services.catalogue.save_framework(member, FrameworkIn("jax", "1")),
    ):
        with pytest.raises(Forbidden):
            call()
    outsider = member_of_new_org(services)
    with pytest.raises(NotFound):
        services.catalogue.get_model(outsider, m.pk)
    assert services.catalogue.list_models(outsider) == []


def test_reference_data(services, admin):
    assert [d.name for d in services.catalogue.list_domains(admin)] == ["ic", "od", "is", "sp", "sc"]
    fw = services.catalogue.save_framework(admin, FrameworkIn("jax", "0.4"))
    with pytest.raises(Conflict):
        services.catalogue.save_framework(admin, FrameworkIn("jax", "0.4"))
    create(services, admin, framework=fw.pk)
    with pytest.raises(Conflict):
        services.catalogue.delete_framework(admin, fw.pk)
    lic = services.catalogue.save_licence(admin, LicenceIn("WTFPL", "http://www.wtfpl.net/"))
    lic = services.catalogue.edit_subdescriptors(
        admin, lic.pk, SubdescriptorEdit("add", "permissions", ("Commercial use", "Modification"))
    )
    assert lic.permissions == ("Commercial use", "Modification")
    services.catalogue.delete_licence(admin, lic.pk)
    with pytest.raises(NotFound):
        services.catalogue.get_licence(admin, lic.pk)


def test_tokens(services, admin):
    services.identity.create_user(admin, "ann", password="pw-pw-pw", role=Role.ADMIN)
    refresh, access = services.tokens.obtain("ann", "pw-pw-pw")
    p = services.tokens.authenticate(access)
    assert (p.username, p.role) == ("ann", Role.ADMIN)
    services.tokens.verify(access)
    services.tokens.verify(refresh)
    assert services.tokens.authenticate(services.tokens.refresh(refresh)).username == "ann"
    with pytest.raises(Unauthenticated):
        services.tokens.authenticate(refresh)  # a refresh token is no access token
    with pytest.raises(Unauthenticated):
        services.tokens.authenticate(access[:-2] + ("AA" if access[-2:] != "AA" else "BB"))
    with pytest.raises(Unauthenticated):
        services.tokens.obtain("ann", "wrong")
    services.tokens.access_ttl = -1
    _, expired = services.tokens.obtain("ann", "pw-pw-pw")
    with pytest.raises(Unauthenticated):
        services.tokens.authenticate(expired)


def test_reference_data_is_superuser_only(services, admin):
    from tests.factories import member_of_new_org

    owner = member_of_new_org(services, role="owner")  # owner of their own organisation, not a superuser
    with pytest.raises(Forbidden, match="superuser"):
        services.catalogue.save_framework(owner, FrameworkIn("jax", "9"))
    with pytest.raises(Forbidden):
        services.catalogue.delete_licence(owner, 1)
    assert services.catalogue.list_frameworks(owner)  # reading is fine


def test_model_data_file_cannot_be_deleted_behind_the_catalogue(services, admin):
    m = create(services, admin)
    m = asyncio.run(services.catalogue.set_data(admin, m.pk, agen(b"weights")))
    with pytest.raises(Conflict, match="pretrained model"):
        asyncio.run(services.files.delete(admin, m.file.id))
    assert services.catalogue.get_model(admin, m.pk).file is not None
