"""Projects (collaborators, stage lists, write rules) and reviews (open, respond, approve/reject, cancel)."""

from __future__ import annotations

import pytest

from modelharbor.domain.errors import Forbidden, InvalidInput, NotFound
from tests.factories import in_same_org, member_of_new_org


@pytest.fixture
def owner(services):
    return member_of_new_org(services, "member")


@pytest.fixture
def project(services, owner):
    return services.projects.create_project(owner, "churn", description="churn models")


@pytest.fixture
def model(services, owner, project):
    reg = services.registry
    reg.create_model(owner, "churn-lr", project_id=project.id)
    reg.create_version(owner, "churn-lr", "s3://x/1")
    reg.create_version(owner, "churn-lr", "s3://x/2")
    return "churn-lr"


def test_project_basics_and_names(services, owner, project):
    p = services.projects
    assert project.owner_username == owner.username and project.effective_stages[0] == "None"
    assert p.find_by_owner_and_name(owner, owner.username, "churn").id == project.id
    assert [x.name for x in p.list_projects(owner)] == ["churn"]
    for bad in ("", "a b", "x/y", "a" * 300):  # a name that is no string is the edges' to refuse
        with pytest.raises(InvalidInput):
            p.create_project(owner, bad)
    with pytest.raises(NotFound):
        p.get_project(owner, "not-an-id")


def test_only_project_writers_change_its_models(services, owner, project, model):
    reg, p = services.registry, services.projects
    other = in_same_org(services, owner, "member")
    assert reg.get_model(other, model).name == model  # the organisation reads every model
    with pytest.raises(Forbidden):
        reg.create_version(other, model, "s3://x/3")
    with pytest.raises(Forbidden):
        reg.update_model(other, model, description="no")
    with pytest.raises(Forbidden):
        reg.create_model(other, "sneaky", project_id=project.id)
    with pytest.raises(Forbidden):
        p.set_collaborator(other, project.id, other.user_id, "Contributor")  # only the owner adds people
    p.set_collaborator(owner, project.id, other.user_id, "ResultsConsumer")
    with pytest.raises(Forbidden):
        reg.create_version(other, model, "s3://x/3")
    p.set_collaborator(owner, project.id, other.user_id, "contributor")  # roles are matched without case
    assert reg.create_version(other, model, "s3://x/3").version == 3
    assert [(c.username, c.role) for c in p.get_project(owner, project.id).collaborators] == [
        (other.username, "Contributor")
    ]
    admin = in_same_org(services, owner, "admin")
    assert reg.update_model(admin, model, description="by admin").description == "by admin"
    p.remove_collaborator(owner, project.id, other.user_id)
    with pytest.raises(Forbidden):
        reg.delete_version(other, model, 3)
    with pytest.raises(InvalidInput):
        p.set_collaborator(owner, project.id, other.user_id, "Boss")
    with pytest.raises(InvalidInput):
        p.set_collaborator(owner, project.id, member_of_new_org(services).user_id, "Contributor")
    with pytest.raises(NotFound):
        p.remove_collaborator(owner, project.id, other.user_id)


def test_project_stage_lists(services, owner, project, model):
    reg, p = services.registry, services.projects
    assert p.get_stages(owner, project.id) == (None, ("None", "Staging", "Production", "Archived"))
    for bad in ([], ["Dev", "QA"], ["None", "none"], ["None", " QA"], "None", ["None", "x" * 65], ["None"] * 30):
        with pytest.raises(InvalidInput):
            p.set_stages(owner, project.id, bad)
    p.set_stages(owner, project.id, ["None", "Dev", "QA", "Prod"])
    assert p.get_stages(owner, project.id)[0] == ("None", "Dev", "QA", "Prod")
    with pytest.raises(InvalidInput):  # MLflow's stages are not this project's
        reg.transition_stage(owner, model, 1, "Production")
    assert reg.transition_stage(owner, model, 1, "qa").current_stage == "QA"
    assert [v.current_stage for v in reg.latest_versions(owner, model, ["QA"])] == ["QA"]
    with pytest.raises(InvalidInput) as e:  # a stage in use cannot disappear
        p.set_stages(owner, project.id, ["None", "Dev", "Prod"])
    assert "QA" in e.value.message
    assert reg.get_version(owner, model, 1).current_stage == "QA"
    p.set_stages(owner, project.id, ["None", "Dev", "qa", "Prod"])  # renamed case follows
    assert reg.get_version(owner, model, 1).current_stage == "qa"
    other = in_same_org(services, owner, "member")
    with pytest.raises(Forbidden):
        p.set_stages(other, project.id, ["None"])
    v = reg.update_version_fields(owner, model, 2, stage="Prod", description="d", tags={"k": "v"})
    assert (v.current_stage, v.description, v.tags) == ("Prod", "d", {"k": "v"})
    with pytest.raises(InvalidInput):
        reg.update_version_fields(owner, model, 2, stage="Nope")
    with pytest.raises(InvalidInput):
        reg.update_version_fields(owner, model, 2)


def test_review_approved_by_everyone_moves_the_version(services, owner, model):
    reg, rv = services.registry, services.reviews
    alice, bob = in_same_org(services, owner, "viewer"), in_same_org(services, owner, "member")
    assert rv.stages_for_review(owner, model, 1) == ["Staging", "Production", "Archived"]
    review = rv.create_review(
        owner, model, 1, reviewer_ids=[alice.user_id, bob.user_id], target_stage="production", notes="please"
    )
    assert (review.status, review.target_stage, review.requested_by_username) == ("Open", "Production", owner.username)
    assert rv.stages_for_review(owner, model, 1) == []
    assert "open review" in " ".join(rv.validate_transition(owner, model, 1, "Staging"))
    with pytest.raises(InvalidInput):  # one open review per version
        rv.create_review(owner, model, 1, reviewer_ids=[alice.user_id], target_stage="Staging")
    with pytest.raises(InvalidInput):  # and no stage change around it
        reg.transition_stage(owner, model, 1, "Staging")
    with pytest.raises(Forbidden):
        rv.respond(owner, model, 1, review.id, decision="Approved")  # not a reviewer
    after_one = rv.respond(alice, model, 1, review.id, decision="approved", notes="ok")
    assert after_one.status == "Open" and reg.get_version(owner, model, 1).current_stage == "None"
    with pytest.raises(InvalidInput):
        rv.respond(alice, model, 1, review.id, decision="Approved")  # once each
    done = rv.respond(bob, model, 1, review.id, decision="Approved")
    assert done.status == "Approved"
    assert {r.username: r.decision for r in done.reviewers} == {alice.username: "Approved", bob.username: "Approved"}
    assert reg.get_version(owner, model, 1).current_stage == "Production"
    assert [r.id for r in rv.list_reviews(owner, model, 1)] == [review.id]
    with pytest.raises(InvalidInput):
        rv.update_review(owner, model, 1, review.id, status="Canceled")  # no longer open


def test_review_rejection_cancel_and_reviewer_changes(services, owner, model):
    reg, rv = services.registry, services.reviews
    alice, bob = in_same_org(services, owner, "member"), in_same_org(services, owner, "member")
    r = rv.create_review(owner, model, 2, reviewer_ids=[alice.user_id], target_stage="Staging")
    with pytest.raises(InvalidInput):
        rv.update_review(owner, model, 2, r.id, add=[bob.user_id], status="Canceled")
    with pytest.raises(InvalidInput):
        rv.update_review(owner, model, 2, r.id)
    with pytest.raises(InvalidInput):
        rv.update_review(owner, model, 2, r.id, remove=[alice.user_id])  # would leave nobody
    with pytest.raises(Forbidden):
        rv.update_review(alice, model, 2, r.id, notes="mine now")
    r = rv.update_review(owner, model, 2, r.id, add=[bob.user_id], notes="added bob")
    assert {x.user_id for x in r.reviewers} == {alice.user_id, bob.user_id} and r.notes == "added bob"
    rv.respond(alice, model, 2, r.id, decision="Approved")
    r = rv.update_review(owner, model, 2, r.id, remove=[bob.user_id])  # everyone left has approved
    assert r.status == "Approved" and reg.get_version(owner, model, 2).current_stage == "Staging"

    r2 = rv.create_review(owner, model, 2, reviewer_ids=[alice.user_id, bob.user_id], target_stage="Production")
    assert rv.respond(bob, model, 2, r2.id, decision="Rejected", notes="metrics").status == "Rejected"
    assert reg.get_version(owner, model, 2).current_stage == "Staging"
    with pytest.raises(InvalidInput):
        rv.respond(alice, model, 2, r2.id, decision="Approved")

    r3 = rv.create_review(owner, model, 2, reviewer_ids=[alice.user_id], target_stage="Production")
    assert rv.update_review(owner, model, 2, r3.id, status="canceled").status == "Canceled"
    assert reg.transition_stage(owner, model, 2, "Production").current_stage == "Production"


def test_review_bad_input(services, owner, model):
    rv = services.reviews
    alice = in_same_org(services, owner, "member")
    stranger = member_of_new_org(services)
    for kwargs in (
        {"reviewer_ids": [], "target_stage": "Staging"},
        {"reviewer_ids": [""], "target_stage": "Staging"},
        {"reviewer_ids": [alice.user_id, alice.user_id], "target_stage": "Staging"},
        {"reviewer_ids": [owner.user_id], "target_stage": "Staging"},  # not oneself
        {"reviewer_ids": [stranger.user_id], "target_stage": "Staging"},
        {"reviewer_ids": [alice.user_id], "target_stage": "None"},  # already there
        {"reviewer_ids": [alice.user_id], "target_stage": "Nowhere"},
        {"reviewer_ids": [alice.user_id], "target_stage": ""},
    ):
        with pytest.raises(InvalidInput):
            rv.create_review(owner, model, 1, **kwargs)
    with pytest.raises(NotFound):
        rv.create_review(owner, model, 99, reviewer_ids=[alice.user_id], target_stage="Staging")
    with pytest.raises(NotFound):
        rv.get_review(owner, model, 1, "0" * 24)
    with pytest.raises(NotFound):
        rv.get_review(owner, model, 1, "'; drop table x")
    with pytest.raises(NotFound):  # another organisation sees nothing
        rv.stages_for_review(stranger, model, 1)
    r = rv.create_review(owner, model, 1, reviewer_ids=[alice.user_id], target_stage="Staging")
    with pytest.raises(InvalidInput):
        rv.respond(alice, model, 1, r.id, decision="Maybe")
    with pytest.raises(NotFound):  # the review belongs to version 1, not 2
        rv.respond(alice, model, 2, r.id, decision="Approved")
    assert services.reviews.list_reviews(owner, model, 2) == []
    services.registry.delete_version(owner, model, 1)  # reviews go with their version
    with pytest.raises(NotFound):
        rv.get_review(owner, model, 1, r.id)
