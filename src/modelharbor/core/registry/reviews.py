"""Reviews: asking named reviewers to approve moving a model version into a stage (Domino's model reviews).

Rules:
- Opening a review takes write access to the model; the target must be one of the model's stages (its project's
  list) other than the version's current one, and a version has at most one open review.
- Reviewers are members of the organisation other than the requester (1 to MAX_REVIEWERS of them).
- Each reviewer answers once, Approved or Rejected. One rejection rejects the review; when every reviewer has
  approved, the review is Approved and the version moves into the target stage in the same transaction.
- The requester (or an organisation admin) may add/remove reviewers, change the notes or cancel, while the review
  is open — reviewer changes and cancelling are separate requests.
- While a review is open the version's stage does not change any other way (:func:`require_no_open_review`, which
  the registry's stage changes call).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from modelharbor.core.clock import aware, new_hex, now
from modelharbor.core.projects import canonical_stage, is_org_admin, model_stages
from modelharbor.core.registry.validation import validate_version
from modelharbor.db.engine import Database
from modelharbor.db.tables import MembershipRow, UserRow
from modelharbor.db.tables_registry import ModelReviewerRow, ModelReviewRow, ModelVersionRow, RegisteredModelRow
from modelharbor.domain.entities import Review, Reviewer
from modelharbor.domain.errors import Forbidden, InvalidInput, NotFound
from modelharbor.domain.principal import Action, Principal, require

if TYPE_CHECKING:  # the registry's modules import this one (its rules below)
    from modelharbor.core.registry.service import RegistryService

OPEN, APPROVED, REJECTED, CANCELED = "Open", "Approved", "Rejected", "Canceled"
DECISIONS = (APPROVED, REJECTED)
MAX_REVIEWERS = 20
MAX_NOTES = 10_000


def require_no_open_review(s: Session, v: ModelVersionRow) -> None:
    """Refuse to change the stage of a version while a review of it is open."""
    open_review = s.scalar(
        select(ModelReviewRow.id).where(ModelReviewRow.version_pk == v.pk, ModelReviewRow.status == OPEN).limit(1)
    )
    if open_review:
        raise InvalidInput(
            f"Version {v.version} has an open review ({open_review}): its stage changes when the review is "
            "approved; cancel the review to change the stage another way."
        )


def delete_reviews(s: Session, review_ids) -> None:
    """Delete the reviews ``review_ids`` (a list or a select of ids) with their reviewers."""
    s.execute(delete(ModelReviewerRow).where(ModelReviewerRow.review_id.in_(review_ids)))
    s.execute(delete(ModelReviewRow).where(ModelReviewRow.id.in_(review_ids)))


def _notes(notes: str | None) -> str | None:
    if notes is None:
        return None
    if len(notes) > MAX_NOTES or "\x00" in notes:
        raise InvalidInput(f"'notes' must be a string of at most {MAX_NOTES} characters.")
    return notes


def _choice(value: str, allowed: Iterable[str], what: str) -> str:
    for a in allowed:
        if value.lower() == a.lower():
            return a
    raise InvalidInput(f"'{what}' must be one of {', '.join(allowed)}, not {value!r}.")


def _user_ids(value: Sequence[str], what: str) -> list[str]:
    if not all(value):
        raise InvalidInput(f"'{what}' must be a list of user ids.")
    if len(set(value)) != len(value):
        raise InvalidInput(f"'{what}' names a user twice.")
    return list(value)


class ReviewService:
    def __init__(self, db: Database, registry: RegistryService):
        self.db = db
        self.registry = registry

    # --- stages ---------------------------------------------------------------------------------
    def validate_transition(self, principal: Principal, name: str, version: int, target_stage: str) -> list[str]:
        """Why ``version`` cannot move into ``target_stage`` now ([] when it can)."""
        require(principal, Action.REGISTRY_READ, principal.org_id, what="registry")
        number = validate_version(version)
        if not target_stage:
            raise InvalidInput("'targetStage' is required: the stage to move the version into.")
        with self.db.uow(readonly=True) as s:
            model, v = self._version(s, principal, name, number)
            return self._problems(s, model, v, target_stage)

    def stages_for_review(self, principal: Principal, name: str, version: int) -> list[str]:
        """The stages a review of ``version`` may target: the model's stages but the current one; none while a
        review is open."""
        require(principal, Action.REGISTRY_READ, principal.org_id, what="registry")
        number = validate_version(version)
        with self.db.uow(readonly=True) as s:
            model, v = self._version(s, principal, name, number)
            if self._open_review(s, v) is not None:
                return []
            return [st for st in model_stages(s, model) if st != v.current_stage]

    # --- reviews --------------------------------------------------------------------------------
    def create_review(
        self,
        principal: Principal,
        name: str,
        version: int,
        *,
        reviewer_ids: Sequence[str],
        target_stage: str,
        notes: str | None = None,
    ) -> Review:
        require(principal, Action.REGISTRY_WRITE, principal.org_id, what="registry")
        number = validate_version(version)
        reviewers = _user_ids(reviewer_ids, "reviewerIds")
        if not reviewers:
            raise InvalidInput("'reviewerIds' must name at least one reviewer.")
        if len(reviewers) > MAX_REVIEWERS:
            raise InvalidInput(f"A review may have at most {MAX_REVIEWERS} reviewers.")
        notes = _notes(notes)
        if not target_stage:
            raise InvalidInput("'targetStage' is required: the stage the reviewers approve moving the version into.")
        with self.db.uow() as s:
            model = self.registry.model_row(s, principal, name, lock=True)  # write access to the model
            v = self.registry.version_row(s, model, number)
            problems = self._problems(s, model, v, target_stage)
            if problems:
                raise InvalidInput(f"Version {number} of {model.name} cannot be reviewed: {' '.join(problems)}")
            self._check_reviewers(s, principal, reviewers)
            t = now()
            row = ModelReviewRow(
                id=new_hex(12),
                version_pk=v.pk,
                target_stage=canonical_stage(model_stages(s, model), target_stage),
                status=OPEN,
                notes=notes or "",
                requested_by=principal.user_id,
                created_at=t,
                updated_at=t,
            )
            s.add(row)
            s.flush()
            for uid in reviewers:
                s.add(ModelReviewerRow(review_id=row.id, user_id=uid))
            s.flush()
            return self._entity(s, model, v, row)

    def update_review(
        self,
        principal: Principal,
        name: str,
        version: int,
        review_id: str,
        *,
        add: Sequence[str] | None = None,
        remove: Sequence[str] | None = None,
        status: str | None = None,
        notes: str | None = None,
    ) -> Review:
        require(principal, Action.REGISTRY_READ, principal.org_id, what="registry")
        number = validate_version(version)
        add = _user_ids(add, "reviewerIdsToAdd") if add is not None else []
        remove = _user_ids(remove, "reviewerIdsToRemove") if remove is not None else []
        notes = _notes(notes)
        if status is not None:
            status = _choice(status, (CANCELED,), "status")
        if (add or remove) and status:
            raise InvalidInput("Change the reviewers or cancel the review, not both in one request.")
        if not (add or remove or status or notes is not None):
            raise InvalidInput("Give reviewerIdsToAdd/reviewerIdsToRemove, status or notes.")
        if set(add) & set(remove):
            raise InvalidInput("A user cannot be both added and removed.")
        with self.db.uow() as s:
            model, v = self._version(s, principal, name, number)
            row = self._review_row(s, v, review_id, lock=True)
            if not (row.requested_by == principal.user_id or is_org_admin(principal)):
                raise Forbidden("only the user who requested the review (or an organisation admin) may change it")
            if row.status != OPEN:
                raise InvalidInput(f"The review is {row.status}; only an open review can be changed.")
            current = {
                r.user_id: r for r in s.scalars(select(ModelReviewerRow).where(ModelReviewerRow.review_id == row.id))
            }
            if add:
                already = [u for u in add if u in current]
                if already:
                    raise InvalidInput(f"Already reviewers: {', '.join(already)}.")
                self._check_reviewers(s, principal, add, requester=row.requested_by)
            gone = [u for u in remove if u not in current]
            if gone:
                raise InvalidInput(f"Not reviewers of this review: {', '.join(gone)}.")
            remaining = (len(current) - len(remove)) + len(add)
            if remaining < 1:
                raise InvalidInput("A review needs at least one reviewer; cancel it instead.")
            if remaining > MAX_REVIEWERS:
                raise InvalidInput(f"A review may have at most {MAX_REVIEWERS} reviewers.")
            for u in remove:
                s.delete(current[u])
            for u in add:
                s.add(ModelReviewerRow(review_id=row.id, user_id=u))
            if notes is not None:
                row.notes = notes
            if status:
                row.status = status
            row.updated_at = now()
            s.flush()
            if not status:
                self._settle(s, model, v, row)
            return self._entity(s, model, v, row)

    def respond(
        self, principal: Principal, name: str, version: int, review_id: str, *, decision: str, notes: str | None = None
    ) -> Review:
        require(principal, Action.REGISTRY_READ, principal.org_id, what="registry")
        number = validate_version(version)
        decision = _choice(decision, DECISIONS, "decision")
        notes = _notes(notes)
        with self.db.uow() as s:
            model, v = self._version(s, principal, name, number)
            row = self._review_row(s, v, review_id, lock=True)
            mine = s.get(ModelReviewerRow, (row.id, principal.user_id))
            if mine is None:
                raise Forbidden("only a reviewer named on this review may respond to it")
            if row.status != OPEN:
                raise InvalidInput(f"The review is {row.status}; responses are only taken while it is open.")
            if mine.decision is not None:
                raise InvalidInput(f"You already responded ({mine.decision}) to this review.")
            t = now()
            mine.decision, mine.notes, mine.responded_at = decision, notes, t
            row.updated_at = t
            s.flush()
            self._settle(s, model, v, row)
            return self._entity(s, model, v, row)

    def list_reviews(self, principal: Principal, name: str, version: int) -> list[Review]:
        require(principal, Action.REGISTRY_READ, principal.org_id, what="registry")
        number = validate_version(version)
        with self.db.uow(readonly=True) as s:
            model, v = self._version(s, principal, name, number)
            rows = s.scalars(
                select(ModelReviewRow).where(ModelReviewRow.version_pk == v.pk).order_by(ModelReviewRow.created_at)
            )
            return [self._entity(s, model, v, r) for r in rows]

    def get_review(self, principal: Principal, name: str, version: int, review_id: str) -> Review:
        require(principal, Action.REGISTRY_READ, principal.org_id, what="registry")
        number = validate_version(version)
        with self.db.uow(readonly=True) as s:
            model, v = self._version(s, principal, name, number)
            return self._entity(s, model, v, self._review_row(s, v, review_id))

    # --- helpers --------------------------------------------------------------------------------
    def _version(self, s: Session, principal: Principal, name: str, number: int):
        model = self.registry.model_row(s, principal, name)
        return model, self.registry.version_row(s, model, number)

    @staticmethod
    def _open_review(s: Session, v: ModelVersionRow) -> ModelReviewRow | None:
        return s.scalar(
            select(ModelReviewRow).where(ModelReviewRow.version_pk == v.pk, ModelReviewRow.status == OPEN).limit(1)
        )

    def _problems(self, s: Session, model: RegisteredModelRow, v: ModelVersionRow, target: str) -> list[str]:
        stages = model_stages(s, model)
        problems = []
        known = [st for st in stages if st.lower() == target.lower()]
        if not known:
            problems.append(f"'{target}' is not one of the model's stages ({', '.join(stages)}).")
        elif known[0] == v.current_stage:
            problems.append(f"Version {v.version} is already in stage '{v.current_stage}'.")
        if (open_review := self._open_review(s, v)) is not None:
            problems.append(f"Version {v.version} already has an open review ({open_review.id}).")
        return problems

    @staticmethod
    def _check_reviewers(s: Session, principal: Principal, user_ids: list[str], *, requester: str | None = None):
        requester = requester or principal.user_id
        if requester in user_ids:
            raise InvalidInput("The requester cannot review their own request: name other reviewers.")
        members = set(
            s.scalars(
                select(MembershipRow.user_id).where(
                    MembershipRow.org_id == principal.org_id, MembershipRow.user_id.in_(user_ids)
                )
            )
        )
        unknown = [u for u in user_ids if u not in members]
        if unknown:
            raise InvalidInput(f"Not members of this organisation: {', '.join(unknown)}.")

    @staticmethod
    def _review_row(s: Session, v: ModelVersionRow, review_id: str, *, lock: bool = False) -> ModelReviewRow:
        if len(review_id) != 24 or not review_id.isalnum():
            raise NotFound(f"Review {review_id!r} not found")
        q = select(ModelReviewRow).where(ModelReviewRow.id == review_id, ModelReviewRow.version_pk == v.pk)
        row = s.scalar(q.with_for_update() if lock else q)
        if row is None:
            raise NotFound(f"Review {review_id!r} not found for version {v.version}")
        return row

    @staticmethod
    def _settle(s: Session, model: RegisteredModelRow, v: ModelVersionRow, row: ModelReviewRow) -> None:
        """Reject on any rejection; approve, and move the version, once every reviewer approved."""
        decisions = list(s.scalars(select(ModelReviewerRow.decision).where(ModelReviewerRow.review_id == row.id)))
        t = now()
        if REJECTED in decisions:
            row.status, row.updated_at = REJECTED, t
        elif decisions and all(d == APPROVED for d in decisions):
            stages = model_stages(s, model)
            if row.target_stage not in stages:
                raise InvalidInput(
                    f"The project no longer has stage '{row.target_stage}'; cancel this review and open a new one."
                )
            row.status, row.updated_at = APPROVED, t
            v.current_stage, v.updated_at, model.updated_at = row.target_stage, t, t
        s.flush()

    @staticmethod
    def _entity(s: Session, model: RegisteredModelRow, v: ModelVersionRow, row: ModelReviewRow) -> Review:
        reviewers = s.execute(
            select(ModelReviewerRow, UserRow.username)
            .join(UserRow, UserRow.id == ModelReviewerRow.user_id, isouter=True)
            .where(ModelReviewerRow.review_id == row.id)
            .order_by(UserRow.username)
        ).all()
        requester = s.get(UserRow, row.requested_by) if row.requested_by else None
        return Review(
            id=row.id,
            model_name=model.name,
            model_version=v.version,
            target_stage=row.target_stage,
            status=row.status,
            notes=row.notes or "",
            requested_by_id=row.requested_by,
            requested_by_username=requester.username if requester else None,
            reviewers=tuple(
                Reviewer(r.user_id, uname, r.decision, r.notes, aware(r.responded_at) if r.responded_at else None)
                for r, uname in reviewers
            ),
            created_at=aware(row.created_at),
            updated_at=aware(row.updated_at),
        )
