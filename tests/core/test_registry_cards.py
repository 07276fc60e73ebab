"""The registry's read models (core/registry/cards.py): a page of model or version cards names the right creators,
projects and rights for the caller, and costs a fixed number of statements whatever its size."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import event

from modelharbor.domain.inputs import MetricIn, TagIn
from tests.factories import in_same_org, member_of_new_org

MODELS = 24  # 6 in each of three projects and 6 in none


@contextmanager
def statements(services):
    """The SQL statements run inside the block (a list, filled as they run)."""
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(services.db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(services.db.engine, "before_cursor_execute", count)


@pytest.fixture
def org(services):
    """An organisation of an admin, four members and a viewer; three projects with collaborators; 24 models by
    three creators, each with a version registered from a run with a metric and a param."""
    admin = member_of_new_org(services, "admin")
    alice, bob, carol, dave = (in_same_org(services, admin, "member") for _ in range(4))
    viewer = in_same_org(services, admin, "viewer")
    p = services.projects
    p1 = p.create_project(alice, "p1")  # alice's; carol may not write it
    p2 = p.create_project(bob, "p2")
    p.set_collaborator(bob, p2.id, carol.user_id, "Contributor")  # carol may write p2
    p3 = p.create_project(bob, "p3")
    p.set_collaborator(bob, p3.id, carol.user_id, "ResultsConsumer")  # a role that may not write
    places = [(p1.id, alice), (p2.id, bob), (p3.id, bob), (None, dave)]
    expected = {}
    for i in range(MODELS):
        project_id, author = places[i % 4]
        name = f"m{i:02d}"
        services.registry.create_model(author, name, project_id=project_id)
        run = services.tracking.create_run(author, "0")
        services.tracking.log_batch(
            author,
            run.id,
            metrics=[MetricIn("acc", i / 100, 1_700_000_000_000, 0)],
            params=[TagIn("i", str(i))],
        )
        services.registry.create_version(author, name, "s3://x", run_id=run.id)
        expected[name] = (project_id, author.username, run.id)
    return {
        "admin": admin,
        "carol": carol,
        "viewer": viewer,
        "projects": {x.id: x for x in (p1, p2, p3)},
        "expected": expected,
    }


def test_a_page_of_cards_names_creators_projects_and_rights(services, org):
    carol, projects = org["carol"], org["projects"]
    page = services.registry.model_cards(carol, order=("name", False), max_results=MODELS, metrics=True)
    assert [c.model.name for c in page.items] == sorted(org["expected"])
    writable = {None, next(p.id for p in projects.values() if p.name == "p2")}
    for card in page.items:
        project_id, creator, run_id = org["expected"][card.model.name]
        assert card.creator_username == creator
        if project_id is None:
            assert card.project is None
        else:
            project = projects[project_id]
            assert (card.project.id, card.project.name, card.project.owner_username) == (
                project.id,
                project.name,
                project.owner_username,
            )
        assert card.can_edit is (project_id in writable), card.model.name
        assert card.can_view_runs is True
        assert card.latest.run_id == run_id and card.latest.version == 1
        assert [(m.key, m.value) for m in card.latest_metrics] == [("acc", int(card.model.name[1:]) / 100)]
    # an admin of the organisation may change every model; a viewer none, but sees the same projects
    assert all(c.can_edit for c in services.registry.model_cards(org["admin"], max_results=MODELS).items)
    seen = services.registry.model_cards(org["viewer"], order=("name", False), max_results=MODELS).items
    assert not any(c.can_edit for c in seen)
    assert [c.project for c in seen] == [c.project for c in page.items]
    assert all(c.latest_metrics == () for c in seen)  # not asked for


def test_version_cards_carry_the_run_unless_another_org_owns_it(services, org):
    carol = org["carol"]
    card = services.registry.version_card(carol, "m01", 1)
    project_id, creator, run_id = org["expected"]["m01"]
    assert (card.creator_username, card.project.id, card.run.id) == (creator, project_id, run_id)
    assert card.run.params == {"i": "1"} and [m.key for m in card.run.metrics] == ["acc"]
    stranger = member_of_new_org(services, "member")
    foreign = services.tracking.create_run(stranger, "0").id
    services.registry.create_version(carol, "m03", "s3://y", run_id=foreign)  # a model in no project
    cards, total = services.registry.version_cards(carol, "m03", runs=True)
    assert total == 2 and [c.version.version for c in cards] == [2, 1]
    assert cards[0].run is None and cards[1].run.id == org["expected"]["m03"][2]
    assert services.registry.version_cards(carol, "m03")[0][1].run is None  # runs not asked for


@pytest.mark.parametrize("metrics", [False, True])
def test_a_page_of_cards_costs_the_same_few_statements_whatever_its_size(services, org, metrics):
    carol = org["carol"]
    counts = {}
    for size in (2, 5, 20):
        with statements(services) as seen:
            page = services.registry.model_cards(carol, max_results=size, metrics=metrics)
        assert len(page.items) == size
        counts[size] = len(seen)
    assert counts[2] == counts[5] == counts[20], counts
    # the page, its tags and aliases, its latest versions, the projects, the usernames (+ runs and metrics)
    assert counts[20] <= (7 if metrics else 5), counts


def test_version_cards_cost_the_same_few_statements_whatever_their_number(services, org):
    carol, reg = org["carol"], services.registry
    for _ in range(19):
        reg.create_version(carol, "m01", "s3://z", run_id=org["expected"]["m01"][2])
    counts = {}
    for limit in (1, 20):
        with statements(services) as seen:
            cards, total = reg.version_cards(carol, "m01", limit=limit, runs=True)
        assert (len(cards), total) == (limit, 20)
        counts[limit] = len(seen)
    # the model, the count, the versions, their tags, their aliases, usernames, project, runs, metrics, params
    assert counts[1] == counts[20] <= 10, counts
