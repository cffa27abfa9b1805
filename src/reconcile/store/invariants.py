"""The invariants of PRODUCT.md as SQL checks that scale to millions of rows.

``reconcile check`` prints what :func:`check` returns; the tests call it after every
operation. Each check is one query, so a check of a large table stays in seconds.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from . import Store
from .schema import IDENTIFIER_GROUP_ROWS

_KEPT = 'SELECT field, value, "groupId", holders FROM identifier_group'

_CHECKS: list[tuple[str, str, str]] = [
    (
        "link-shape",
        "a live contact must be a primary with no linkedId, or a secondary pointing at a live primary",
        """
        SELECT c.id, c."linkPrecedence", c."linkedId" FROM "Contact" c
        LEFT JOIN "Contact" p ON p.id = c."linkedId"
        WHERE c."deletedAt" IS NULL AND (
            (c."linkPrecedence" = 'primary' AND c."linkedId" IS NOT NULL)
            OR (c."linkPrecedence" = 'secondary' AND (
                p.id IS NULL OR p."linkPrecedence" <> 'primary' OR p."deletedAt" IS NOT NULL))
            OR c."linkPrecedence" NOT IN ('primary', 'secondary'))
        """,
    ),
    (
        "oldest-primary",
        "the primary must be the oldest live contact of its group (createdAt, then id)",
        """
        SELECT s.id, s."linkedId" FROM "Contact" s JOIN "Contact" p ON p.id = s."linkedId"
        WHERE s."deletedAt" IS NULL
          AND (s."createdAt" < p."createdAt" OR (s."createdAt" = p."createdAt" AND s.id < p.id))
        """,
    ),
    (
        "email-split",
        "live contacts with the same email must share a group (unless a recorded guard kept them apart)",
        """
        SELECT email, COUNT(DISTINCT COALESCE("linkedId", id)) FROM "Contact"
        WHERE "deletedAt" IS NULL AND email IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM link_guard g WHERE g.field = 'email' AND g.value = "Contact".email)
        GROUP BY email HAVING COUNT(DISTINCT COALESCE("linkedId", id)) > 1
        """,
    ),
    (
        "phone-split",
        "live contacts with the same phone must share a group (unless a recorded guard kept them apart)",
        """
        SELECT "phoneNumber", COUNT(DISTINCT COALESCE("linkedId", id)) FROM "Contact"
        WHERE "deletedAt" IS NULL AND "phoneNumber" IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM link_guard g WHERE g.field = 'phoneNumber' AND g.value = "Contact"."phoneNumber")
        GROUP BY "phoneNumber" HAVING COUNT(DISTINCT COALESCE("linkedId", id)) > 1
        """,
    ),
    (
        "identifier",
        "a live contact must hold an email or a phone (an unreadable value alone never makes a contact)",
        """
        SELECT id, "unreadableEmail", "unreadablePhone" FROM "Contact"
        WHERE "deletedAt" IS NULL AND email IS NULL AND "phoneNumber" IS NULL
        """,
    ),
    (
        "identifier-groups",
        "identifier_group (what the guards read) must say which groups hold each value, as the live contacts do",
        f"""
        SELECT 'missing' AS side, m.* FROM (SELECT * FROM ({IDENTIFIER_GROUP_ROWS}) r EXCEPT {_KEPT}) m
        UNION ALL
        SELECT 'stale', s.* FROM ({_KEPT} EXCEPT SELECT * FROM ({IDENTIFIER_GROUP_ROWS}) r) s
        """,
    ),
    (
        "review-stale",
        "a pending review must still ask something: its two groups apart, its scored pair joining them"
        " (a change that settles it closes it as resolved)",
        """
        SELECT pm.id, gl.g, gr.g, gc.g, gk.g FROM pending_merge pm
        JOIN (SELECT id, COALESCE("linkedId", id) AS g FROM "Contact") gl ON gl.id = pm."leftPrimaryId"
        JOIN (SELECT id, COALESCE("linkedId", id) AS g FROM "Contact") gr ON gr.id = pm."rightPrimaryId"
        LEFT JOIN (SELECT id, COALESCE("linkedId", id) AS g FROM "Contact") gc ON gc.id = pm."contactId"
        LEFT JOIN (SELECT id, COALESCE("linkedId", id) AS g FROM "Contact") gk ON gk.id = pm."candidateId"
        WHERE pm.status = 'pending' AND (pm.audit IS NULL OR pm.audit <> 'link') AND (
            gl.g = gr.g
            OR (gc.id IS NOT NULL AND gk.id IS NOT NULL
                AND NOT ((gc.g = gl.g AND gk.g = gr.g) OR (gc.g = gr.g AND gk.g = gl.g))))
        """,
    ),
    (
        "audit-created",
        "every contact must have its creation in the audit log",
        """
        SELECT c.id FROM "Contact" c WHERE NOT EXISTS (
            SELECT 1 FROM audit_log a WHERE a."contactId" = c.id AND a.action = 'created')
        """,
    ),
    (
        "audit-current",
        "the latest audited link of every contact must be its current link",
        """
        SELECT c.id, c."linkedId", a."newLinkedId" FROM "Contact" c
        JOIN audit_log a ON a.id = (
            SELECT MAX(a2.id) FROM audit_log a2
            WHERE a2."contactId" = c.id AND a2."newPrecedence" IS NOT NULL)
        WHERE NOT (a."newLinkedId" = c."linkedId" OR (a."newLinkedId" IS NULL AND c."linkedId" IS NULL))
           OR a."newPrecedence" <> c."linkPrecedence"
        """,
    ),
]

MAX_EXAMPLES = 20


@dataclass(frozen=True)
class Violation:
    check: str
    rule: str
    examples: list[tuple]
    count: int

    def __str__(self) -> str:
        shown = ", ".join(str(tuple(e)) for e in self.examples)
        return f"[{self.check}] {self.rule}: {self.count} violation(s), e.g. {shown}"


def check(store: Store) -> list[Violation]:
    """Run every invariant check; an empty list means the graph is sound."""
    violations = []
    with store.read() as tx:
        for name, rule, sql in _CHECKS:
            rows = tx.conn.execute(text(sql)).all()
            if rows:
                violations.append(Violation(name, rule, [tuple(r) for r in rows[:MAX_EXAMPLES]], len(rows)))
    return violations
