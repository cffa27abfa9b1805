"""Contact table with the seed's columns and the engine's keys; append-only audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "Contact",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("phoneNumber", sa.String(64)),
        sa.Column("email", sa.String(320)),
        sa.Column("linkedId", sa.Integer, sa.ForeignKey("Contact.id")),
        sa.Column("linkPrecedence", sa.String(9), nullable=False),
        sa.Column("createdAt", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updatedAt", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deletedAt", sa.DateTime(timezone=True)),
        sa.Column("name", sa.String(200)),
        sa.Column("emailMailbox", sa.String(320)),
        sa.Column("emailLocal", sa.String(320)),
        sa.Column("phoneNational", sa.String(32)),
        sa.Column("phoneTail", sa.String(16)),
        sa.Column("nameKey", sa.String(200)),
        sa.Column("linkMethod", sa.String(16), nullable=False),
        sa.Column("linkScore", sa.Float),
        sa.Column("linkModel", sa.String(64)),
        sa.CheckConstraint("\"linkPrecedence\" IN ('primary', 'secondary')", name="ck_contact_precedence"),
        sa.CheckConstraint(
            "(\"linkPrecedence\" = 'primary' AND \"linkedId\" IS NULL)"
            " OR (\"linkPrecedence\" = 'secondary' AND \"linkedId\" IS NOT NULL)",
            name="ck_contact_link_shape",
        ),
        sqlite_autoincrement=True,
    )
    for name, column in [
        ("ix_contact_email", "email"),
        ("ix_contact_phone", "phoneNumber"),
        ("ix_contact_linked", "linkedId"),
        ("ix_contact_mailbox", "emailMailbox"),
        ("ix_contact_local", "emailLocal"),
        ("ix_contact_phone_national", "phoneNational"),
        ("ix_contact_phone_tail", "phoneTail"),
        ("ix_contact_name_key", "nameKey"),
    ]:
        op.create_index(name, "Contact", [column])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("contactId", sa.Integer, sa.ForeignKey("Contact.id"), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("oldLinkedId", sa.Integer),
        sa.Column("newLinkedId", sa.Integer),
        sa.Column("oldPrecedence", sa.String(9)),
        sa.Column("newPrecedence", sa.String(9)),
        sa.Column("cause", sa.String(128), nullable=False),
        sa.Column("detail", sa.JSON),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_audit_contact", "audit_log", ["contactId"])
    op.create_index("ix_audit_cause", "audit_log", ["cause"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("Contact")
