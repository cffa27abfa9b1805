"""Only the store speaks SQL: no module outside ``store/`` (and the Alembic migrations)
builds a statement, touches a table definition, or opens a connection, so every
statement and transaction can be read, locked and tuned in one layer."""
from __future__ import annotations

import ast

from reconcile.config import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "src" / "reconcile"
#: what a layer above the store may take from SQLAlchemy: its errors (to answer 503 or
#: retry) and URL parsing (to print a URL without its password)
ALLOWED_SQLALCHEMY = {"sqlalchemy.exc", "sqlalchemy.engine.make_url"}
#: the attributes through which code reaches a connection
CONNECTION_ATTRIBUTES = {"conn", "engine"}


def _above_the_store():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).parts
        if parts[0] not in {"store", "migrations"}:
            yield path


def _sql_uses(path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            module = node.module
            if module.startswith("sqlalchemy"):
                names = {module} if module in ALLOWED_SQLALCHEMY else {f"{module}.{a.name}" for a in node.names}
                found += [f"imports {n}" for n in sorted(names - ALLOWED_SQLALCHEMY)]
            elif module.endswith("store.schema") or (module.endswith("store") and any(a.name == "schema" for a in node.names)):
                found.append(f"imports the table definitions ({module})")
        elif isinstance(node, ast.Import):
            found += [f"imports {a.name}" for a in node.names if a.name.split(".")[0] == "sqlalchemy" and a.name not in ALLOWED_SQLALCHEMY]
        elif isinstance(node, ast.Attribute) and node.attr in CONNECTION_ATTRIBUTES:
            found.append(f"reaches a connection (.{node.attr}) on line {node.lineno}")
    return found


def test_only_the_store_builds_statements_or_opens_connections() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE)} {use}" for path in _above_the_store() for use in _sql_uses(path)
    ]
    assert not offenders, "\n".join(offenders)


def test_the_check_sees_a_statement_built_above_the_store(tmp_path) -> None:
    module = tmp_path / "example.py"
    module.write_text(
        "from sqlalchemy import select\n"
        "from sqlalchemy.exc import OperationalError\n"
        "from ..store.schema import contact\n"
        "def f(store):\n"
        "    with store.read() as tx:\n"
        "        return tx.conn.execute(select(contact)).all()\n"
    )
    assert _sql_uses(module) == [
        "imports sqlalchemy.select",
        "imports the table definitions (store.schema)",
        "reaches a connection (.conn) on line 6",
    ]
