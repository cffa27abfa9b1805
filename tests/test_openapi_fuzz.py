"""Fuzzing from the service's own ``/openapi.json`` (schemathesis): for every operation,
generated requests, valid and invalid, never get a 5xx, and every answer (status,
content type, headers, body) matches what the document says, on SQLite and PostgreSQL.

Authenticated as an admin reviewer so the generated data reaches the handlers. Driven
through schemathesis's Python API (``as_strategy``) under hypothesis rather than its
pytest plugin's lazy fixtures, which do not run on this pytest. Examples per operation
and mode are bounded (no shrinking) so each backend takes well under a minute; every
operation's failures are collected before the test fails, so one run reports them all.

One check is left out for three operations: that every schema-valid request is
accepted. The document cannot state every input rule there: for ``POST /identify`` and
``POST /erasure`` an email's shape after normalisation and what ``phonenumbers`` reads; for ``GET /persons``
"exactly one of the two query parameters". A request it allows may rightly get a 400.
"""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from review_seed import exact_only, near_miss, reviewer
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from reconcile.web import create_app
from reconcile.web.health import openapi_document

EXAMPLES = 25
#: operations whose input rules the document cannot state in full
RULES_BEYOND_THE_DOCUMENT = frozenset({"POST /identify", "POST /erasure", "GET /persons"})


@pytest.fixture
def app(db_url):
    app = create_app(exact_only(db_url))
    yield app
    app.extensions["reconcile"].store.dispose()


def test_generated_requests_get_no_5xx_and_answers_match_the_document(app):
    near_miss(app.extensions["reconcile"], 1)
    headers = {"Authorization": f"Bearer {reviewer(app.extensions['reconcile'].store, 'fuzz', admin=True)}"}
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def fuzz(case) -> None:
                case.call_and_validate(headers=headers, excluded_checks=excluded)

            excluded = [positive_data_acceptance] if operation.label in RULES_BEYOND_THE_DOCUMENT else []

            try:
                fuzz()
            except Unsatisfiable:  # nothing in this operation's request can be made invalid
                assert mode is GenerationMode.NEGATIVE, operation.label
            except Exception as exc:  # noqa: BLE001 - collected, reported together below
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    documented = sum(len(methods) for methods in openapi_document()["paths"].values())
    assert operations == documented - 1  # all but GET /openapi.json, which schemathesis loads the schema from
    assert not failures, "\n\n".join(failures)
