"""The model-registry core: names, versions, stages, aliases, tags, filters, paging, organisations, roles."""

from __future__ import annotations

import pytest

from modelharbor.api.dialects.mlflow.filters import decode_token, parse_filter, query
from modelharbor.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from modelharbor.domain.query import Comparison
from tests.factories import in_same_org, member_of_new_org


@pytest.fixture
def reg(services):
    return services.registry


@pytest.fixture
def owner(services):
    return member_of_new_org(services, "owner")


def test_create_get_rename_update_delete(reg, owner):
    m = reg.create_model(owner, "iris", description="d", tags={"team": "ml"})
    assert (m.name, m.description, m.tags, m.latest_versions, m.aliases) == ("iris", "d", {"team": "ml"}, (), ())
    assert reg.get_model(owner, "iris").creation_time == m.creation_time
    with pytest.raises(Conflict):
        reg.create_model(owner, "iris")
    reg.create_model(owner, "other")
    with pytest.raises(Conflict):
        reg.rename_model(owner, "iris", "other")
    r = reg.rename_model(owner, "iris", "iris2")
    assert r.name == "iris2" and r.tags == {"team": "ml"}
    with pytest.raises(NotFound):
        reg.get_model(owner, "iris")
    assert reg.update_model(owner, "iris2", description="new").description == "new"
    reg.delete_model(owner, "iris2")
    with pytest.raises(NotFound):
        reg.get_model(owner, "iris2")
    with pytest.raises(NotFound):
        reg.delete_model(owner, "iris2")


@pytest.mark.parametrize("bad", ["", "  ", "a/b", "a:b", "x" * 257, "..", "a\x00b", "a\nb"])
def test_invalid_names(reg, owner, bad):
    with pytest.raises(InvalidInput):
        reg.create_model(owner, bad)


def test_versions_numbering_and_no_reuse(reg, owner):
    reg.create_model(owner, "m")
    with pytest.raises(NotFound):
        reg.create_version(owner, "nope", "s3://x")
    vs = [reg.create_version(owner, "m", f"src{i}", run_id="r1" if i else None) for i in range(3)]
    assert [v.version for v in vs] == [1, 2, 3]
    assert vs[0].status == "READY" and vs[0].current_stage == "None" and vs[0].run_id is None
    reg.delete_version(owner, "m", 3)
    assert reg.create_version(owner, "m", "src").version == 4
    with pytest.raises(NotFound):
        reg.get_version(owner, "m", 3)
    for bad in (0, -1, 2**31):
        with pytest.raises(NotFound):
            reg.get_version(owner, "m", bad)
    v = reg.update_version(owner, "m", 2, description="hello")
    assert v.description == "hello" and reg.download_uri(owner, "m", 2) == "src1"
    reg.create_model(owner, "n")
    assert reg.create_version(owner, "n", "x").version == 1


def test_stage_transitions_and_latest(reg, owner):
    reg.create_model(owner, "m")
    for _ in range(4):
        reg.create_version(owner, "m", "s")
    assert reg.transition_stage(owner, "m", 1, "production").current_stage == "Production"
    reg.transition_stage(owner, "m", 2, "Staging")
    reg.transition_stage(owner, "m", 3, "STAGING")
    v = reg.transition_stage(owner, "m", 4, "Production", archive_existing_versions=True)
    assert v.current_stage == "Production"
    stages = {n: reg.get_version(owner, "m", n).current_stage for n in (1, 2, 3, 4)}
    assert stages == {1: "Archived", 2: "Staging", 3: "Staging", 4: "Production"}
    latest = {v.current_stage: v.version for v in reg.get_model(owner, "m").latest_versions}
    assert latest == {"Archived": 1, "Staging": 3, "Production": 4}
    assert [v.version for v in reg.latest_versions(owner, "m", ["Staging"])] == [3]
    assert sorted(v.version for v in reg.latest_versions(owner, "m")) == [1, 3, 4]
    with pytest.raises(InvalidInput, match="not an Active stage"):
        reg.transition_stage(owner, "m", 2, "Archived", archive_existing_versions=True)
    with pytest.raises(InvalidInput, match="stage"):
        reg.transition_stage(owner, "m", 2, "Deployed")
    with pytest.raises(InvalidInput):
        reg.latest_versions(owner, "m", ["bogus"])
    assert reg.get_version(owner, "m", 2).current_stage == "Staging"  # nothing half-written


def test_aliases(reg, owner):
    reg.create_model(owner, "m")
    reg.create_version(owner, "m", "a")
    reg.create_version(owner, "m", "b")
    reg.set_alias(owner, "m", "champion", 1)
    reg.set_alias(owner, "m", "challenger", 2)
    assert reg.get_version_by_alias(owner, "m", "champion").version == 1
    reg.set_alias(owner, "m", "champion", 2)  # moves
    v = reg.get_version_by_alias(owner, "m", "champion")
    assert v.version == 2 and v.aliases == ("challenger", "champion")
    assert reg.get_model(owner, "m").aliases == (("challenger", 2), ("champion", 2))
    for bad in ("latest", "v1", "a b", ""):
        with pytest.raises(InvalidInput):
            reg.set_alias(owner, "m", bad, 1)
    with pytest.raises(NotFound):
        reg.set_alias(owner, "m", "x", 9)
    reg.delete_alias(owner, "m", "challenger")
    with pytest.raises(NotFound):
        reg.get_version_by_alias(owner, "m", "challenger")
    reg.delete_version(owner, "m", 2)  # aliases of a deleted version go with it
    with pytest.raises(NotFound):
        reg.get_version_by_alias(owner, "m", "champion")


def test_tags(reg, owner):
    reg.create_model(owner, "m")
    reg.create_version(owner, "m", "s", tags={"k": "v"})
    reg.set_model_tag(owner, "m", "a", "1")
    reg.set_model_tag(owner, "m", "a", "2")
    reg.set_version_tag(owner, "m", 1, "x", "y")
    assert reg.get_model(owner, "m").tags == {"a": "2"}
    assert reg.get_version(owner, "m", 1).tags == {"k": "v", "x": "y"}
    reg.delete_model_tag(owner, "m", "a")
    reg.delete_model_tag(owner, "m", "missing")  # like MLflow: no error
    reg.delete_version_tag(owner, "m", 1, "k")
    assert reg.get_model(owner, "m").tags == {} and reg.get_version(owner, "m", 1).tags == {"x": "y"}
    with pytest.raises(InvalidInput):
        reg.set_model_tag(owner, "m", "", "v")
    with pytest.raises(InvalidInput):
        reg.set_model_tag(owner, "m", "../x", "v")


def test_parse_filter():  # the MLflow dialect's grammar, which the registry's searches take
    assert parse_filter("name = 'a''b'") == (Comparison("name", "=", "a'b"),)
    assert parse_filter("name LIKE \"p%\" and tags.`my key` != 'v'") == (
        Comparison("name", "LIKE", "p%"),
        Comparison("my key", "!=", "v", "tags"),
    )
    assert parse_filter("run_id IN ('a', 'b') AND version_number >= 2") == (
        Comparison("run_id", "IN", ("a", "b")),
        Comparison("version_number", ">=", 2),
    )
    assert parse_filter("run_id NOT IN ('a')") == (Comparison("run_id", "NOT IN", ("a",)),)
    assert parse_filter("") == () and parse_filter(None) == ()
    for bad in ("name", "name =", "name = 'a' OR name = 'b'", "name = 'a' name", "= 'a'", "name ~ 'a'", "name = 'a"):
        with pytest.raises(InvalidInput, match="filter"):
            parse_filter(bad)


def test_search_models_filters_order_paging(reg, owner):
    for n in ["pear", "Peach", "plum", "apple", "p_x"]:
        reg.create_model(owner, n)
    reg.set_model_tag(owner, "plum", "colour", "purple")

    def names(f=None, order_by=None):
        return [m.name for m in reg.search_models(owner, query(f, order_by)).items]

    assert names() == ["Peach", "apple", "p_x", "pear", "plum"]
    assert names("name LIKE 'p%'") == ["p_x", "pear", "plum"]  # LIKE is case-sensitive on every database
    assert names("name ILIKE 'p%'") == ["Peach", "p_x", "pear", "plum"]
    assert names("name LIKE 'p_a%'") == ["pear"]
    assert names("name = 'apple'") == ["apple"]
    assert names("name != 'apple' AND name LIKE '%e%'") == ["Peach", "pear"]
    assert names("tags.colour = 'purple'") == ["plum"]
    assert names("tags.colour LIKE 'pur%' AND name = 'pear'") == []
    # '!=' on a tag also matches objects without it (the MLflow client appends this to every search)
    assert names("tag.`colour` != 'purple'") == ["Peach", "apple", "p_x", "pear"]
    assert names("tags.colour != 'red' AND name LIKE 'pl%'") == ["plum"]
    assert names(order_by=["name DESC"])[:2] == ["plum", "pear"]
    reg.set_model_tag(owner, "apple", "t", "1")  # touches last_updated
    assert names(order_by=["last_updated_timestamp DESC"])[0] == "apple"
    page1 = reg.search_models(owner, query("name LIKE 'p%'"), max_results=2)
    assert [m.name for m in page1.items] == ["p_x", "pear"] and page1.next_offset == 2
    page2 = reg.search_models(owner, query("name LIKE 'p%'"), max_results=2, offset=page1.next_offset)
    assert [m.name for m in page2.items] == ["plum"] and page2.next_offset is None
    for bad in ({"filter_string": "run_id = 'x'"}, {"filter_string": "name = "}, {"order_by": ["colour"]}):
        with pytest.raises(InvalidInput):
            reg.search_models(owner, query(bad.get("filter_string"), bad.get("order_by")))
    for kw in ({"max_results": 0}, {"max_results": 1001}):
        with pytest.raises(InvalidInput):
            reg.search_models(owner, **kw)
    with pytest.raises(InvalidInput):
        decode_token("garbage")


def test_search_versions(reg, owner):
    reg.create_model(owner, "a")
    reg.create_model(owner, "b")
    reg.create_version(owner, "a", "s3://bucket/a1", run_id="r1")
    reg.create_version(owner, "a", "s3://bucket/a2", run_id="r2", tags={"k": "v"})
    reg.create_version(owner, "b", "s3://other/b1", run_id="r1")

    def found(f=None, order_by=None):
        return [(v.name, v.version) for v in reg.search_versions(owner, query(f, order_by)).items]

    assert found() == [("a", 2), ("a", 1), ("b", 1)]
    assert found("name = 'a'") == [("a", 2), ("a", 1)]
    assert found("run_id = 'r1'") == [("a", 1), ("b", 1)]
    assert found("run_id IN ('r2', 'zz')") == [("a", 2)]
    assert found("source_path LIKE 's3://bucket/%'") == [("a", 2), ("a", 1)]
    assert found("tags.k = 'v'") == [("a", 2)]
    assert found("name = 'a' AND version_number > 1") == [("a", 2)]
    assert found(order_by=["version_number ASC", "name DESC"]) == [("b", 1), ("a", 1), ("a", 2)]
    p = reg.search_versions(owner, max_results=2)
    assert len(p.items) == 2 and p.next_offset == 2
    assert [v.name for v in reg.search_versions(owner, offset=p.next_offset).items] == ["b"]
    with pytest.raises(InvalidInput):
        found("name IN ('a')")
    with pytest.raises(InvalidInput):
        found("colour = 'x'")


def test_a_versions_page_larger_than_a_statements_parameter_limit(services, reg, owner):
    """A page may hold more versions than a statement takes parameters (PostgreSQL: 65,535; SQLite as usually
    built: 32,766 — lowered to that here, this machine's SQLite takes 250,000): tags and aliases are read in
    slices."""
    import sqlite3

    from sqlalchemy import event, insert, select

    from modelharbor.core.clock import now
    from modelharbor.db.tables_registry import ModelVersionRow, ModelVersionTagRow, RegisteredModelRow

    if not services.db.is_sqlite:
        pytest.skip("the slices are checked against SQLite's lowered limit (PostgreSQL's needs > 65,535 versions)")

    @event.listens_for(services.db.engine, "connect")
    def _limit(dbapi_conn, _record):
        dbapi_conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32_766)

    services.db.engine.dispose()  # new connections take the limit
    reg.create_model(owner, "many")
    n = 40_000
    with services.db.uow() as s:
        pk = s.scalar(select(RegisteredModelRow.pk).where(RegisteredModelRow.name == "many"))
        t = now()
        rows = [
            {"model_pk": pk, "version": i, "source": f"s3://b/{i}", "created_at": t, "updated_at": t}
            for i in range(1, n + 1)
        ]
        for i in range(0, n, 5000):
            s.execute(insert(ModelVersionRow), rows[i : i + 5000])
        last = s.scalar(select(ModelVersionRow.pk).where(ModelVersionRow.model_pk == pk, ModelVersionRow.version == n))
        s.execute(insert(ModelVersionTagRow), [{"version_pk": last, "key": "k", "value": "v"}])
    page = reg.search_versions(owner, query("name = 'many'"), max_results=n)
    assert len(page.items) == n and page.next_offset is None
    assert page.items[0].version == n and page.items[0].tags == {"k": "v"}


def test_organisations_are_separate(services, reg, owner):
    stranger = member_of_new_org(services, "owner")
    reg.create_model(owner, "shared-name")
    reg.create_version(owner, "shared-name", "s")
    with pytest.raises(NotFound):
        reg.get_model(stranger, "shared-name")
    with pytest.raises(NotFound):
        reg.create_version(stranger, "shared-name", "s")
    assert reg.search_models(stranger).items == () and reg.search_versions(stranger).items == ()
    reg.create_model(stranger, "shared-name")  # the same name in another organisation is fine
    assert reg.create_version(stranger, "shared-name", "t").version == 1


def test_roles(services, reg, owner):
    viewer = in_same_org(services, owner, "viewer")
    member = in_same_org(services, owner, "member")
    reg.create_model(member, "m")
    reg.create_version(member, "m", "s")
    assert reg.get_model(viewer, "m").name == "m"
    assert reg.get_version(viewer, "m", 1).version == 1
    for call in (
        lambda: reg.create_model(viewer, "x"),
        lambda: reg.create_version(viewer, "m", "s"),
        lambda: reg.transition_stage(viewer, "m", 1, "Production"),
        lambda: reg.set_alias(viewer, "m", "a", 1),
        lambda: reg.delete_model(viewer, "m"),
    ):
        with pytest.raises(Forbidden):
            call()


def test_projects(services, reg, owner):
    projects = services.projects
    p = projects.create_project(owner, "proj")
    assert len(p.id) == 24 and projects.get_project(owner, p.id) == p
    with pytest.raises(Conflict):
        projects.create_project(owner, "PROJ")
    m = reg.create_model(owner, "m", project_id=p.id)
    assert m.project_id == p.id
    with pytest.raises(NotFound):
        reg.create_model(owner, "n", project_id="0" * 24)
    with pytest.raises(NotFound):
        projects.get_project(member_of_new_org(services), p.id)


def test_reads_join_tags_aliases_and_latest_versions(reg, owner):
    """get, search and the create answers carry everything the read path gathers: the model's tags and aliases, and
    the newest version in each stage with that version's own tags and aliases."""
    m = reg.create_model(owner, "full", tags={"b": "2", "a": "1"})
    assert (m.tags, m.aliases, m.latest_versions) == ({"a": "1", "b": "2"}, (), ())
    v1 = reg.create_version(owner, "full", "s1", tags={"t": "1"}, description="first")
    assert (v1.version, v1.tags, v1.aliases, v1.current_stage, v1.description) == (1, {"t": "1"}, (), "None", "first")
    assert reg.get_version(owner, "full", 1) == v1
    reg.create_version(owner, "full", "s2")
    reg.create_version(owner, "full", "s3", tags={"z": "9", "y": "8"})
    reg.transition_stage(owner, "full", 1, "Production")
    for alias, version in (("zeta", 3), ("alpha", 1), ("mid", 3)):
        reg.set_alias(owner, "full", alias, version)
    reg.create_model(owner, "bare")
    reg.create_model(owner, "tagged", tags={"o": "x"})
    for got in (reg.get_model(owner, "full"), reg.search_models(owner, query("name = 'full'")).items[0]):
        assert got.tags == {"a": "1", "b": "2"}
        assert got.aliases == (("alpha", 1), ("mid", 3), ("zeta", 3))
        assert [(v.version, v.current_stage) for v in got.latest_versions] == [(1, "Production"), (3, "None")]
        prod, none = got.latest_versions
        assert (prod.tags, prod.aliases, prod.source, prod.description) == ({"t": "1"}, ("alpha",), "s1", "first")
        assert (none.tags, none.aliases, none.source) == ({"y": "8", "z": "9"}, ("mid", "zeta"), "s3")
    page = reg.search_models(owner, query("name LIKE '%'"))
    assert [(x.name, x.tags, len(x.latest_versions)) for x in page.items] == [
        ("bare", {}, 0),
        ("full", {"a": "1", "b": "2"}, 2),
        ("tagged", {"o": "x"}, 0),
    ]
    assert page.items[1] == reg.get_model(owner, "full")
