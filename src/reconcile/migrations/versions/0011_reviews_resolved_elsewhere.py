"""Review items close themselves when their groups are merged or split by other means:
a new status ``resolved`` ("resolved elsewhere"), indexes to find the items a change of
groups touches, and a sweep that closes the items already stale in existing data.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_OLD = "status IN ('pending', 'confirmed', 'rejected', 'superseded')"
_NEW = "status IN ('pending', 'confirmed', 'rejected', 'superseded', 'resolved')"

# the groups' current primaries are coalesce(linkedId, id) of the stored ones (no chains)
def _group(column: str) -> str:
    return f'(SELECT COALESCE(c."linkedId", c.id) FROM "Contact" c WHERE c.id = pending_merge."{column}")'


_CLOSE = """
UPDATE pending_merge SET status = 'resolved', "decidedAt" = CURRENT_TIMESTAMP, note = '{note}'
WHERE status = 'pending' AND (audit IS NULL OR audit <> 'link') AND ({condition})
"""
# an audited automatic link (migration 0009) asks about two groups made one on purpose
_MERGED = _CLOSE.format(
    note="resolved elsewhere: the two groups were merged by other means",
    condition=f"{_group('leftPrimaryId')} = {_group('rightPrimaryId')}",
)
# what reconcile.store.contacts.settled_reason calls a split: the scored pair no longer joins the two groups
_SPLIT = _CLOSE.format(
    note="resolved elsewhere: a group was split, the scored pair no longer joins these two groups",
    condition=(
        '"contactId" IS NOT NULL AND "candidateId" IS NOT NULL AND NOT ('
        f"({_group('contactId')} = {_group('leftPrimaryId')} AND {_group('candidateId')} = {_group('rightPrimaryId')})"
        f" OR ({_group('contactId')} = {_group('rightPrimaryId')} AND {_group('candidateId')} = {_group('leftPrimaryId')}))"
    ),
)


def upgrade() -> None:
    with op.batch_alter_table("pending_merge") as batch:
        batch.drop_constraint("ck_pending_status", type_="check")
        batch.create_check_constraint("ck_pending_status", _NEW)
    op.create_index("ix_pending_right", "pending_merge", ["rightPrimaryId"])
    op.create_index("ix_pending_contact", "pending_merge", ["contactId"])
    op.create_index("ix_pending_candidate", "pending_merge", ["candidateId"])
    op.execute(_MERGED)
    op.execute(_SPLIT)


def downgrade() -> None:
    op.execute("UPDATE pending_merge SET status = 'superseded' WHERE status = 'resolved'")
    op.drop_index("ix_pending_candidate", "pending_merge")
    op.drop_index("ix_pending_contact", "pending_merge")
    op.drop_index("ix_pending_right", "pending_merge")
    with op.batch_alter_table("pending_merge") as batch:
        batch.drop_constraint("ck_pending_status", type_="check")
        batch.create_check_constraint("ck_pending_status", _OLD)
