"""``GET /metrics`` in the Prometheus text format, with the official ``prometheus_client``.

- ``reconcile_identify_requests_total{method,outcome}``: ``/identify`` calls by how the
  answer was reached (``new``/``exact``/``probabilistic``, from the response's
  ``match.method``; ``none`` when there is no answer) and ``ok``/``invalid``/``error``.
- ``reconcile_identify_duration_seconds{method}``: their latency.
- ``reconcile_review_queue_pending``: pending review items, counted in the database at
  scrape time, so every worker reports the same true value.
- ``reconcile_audit_link_precision{bound}``, ``reconcile_audit_close_nonlink_match_rate{bound}``
  and ``reconcile_audit_held_nonlink_match_rate{bound}`` (``bound`` = ``estimate``, ``low``,
  ``high``: the 95% interval; NaN before any audit item is decided),
  ``reconcile_audit_items{kind,state}`` (``link``/``near``/``held``; ``decided``/``pending``)
  and ``reconcile_audit_rejected_links``: what the random audit sample says about automatic
  links, close non-links and guard-held clear non-links
  (:mod:`reconcile.review.audit_estimates`), read at scrape time.
- ``reconcile_review_decisions_total{outcome}``: reviewers' decisions (``confirmed``,
  ``rejected``, ``undone``) and refusals (``already_decided``, ``superseded``, ...).

Several worker processes: set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory before
the server starts; every worker then writes its counters there and a scrape of any
worker adds them all up (prometheus_client's multiprocess mode). Without it the
process's default registry is served.
"""
from __future__ import annotations

import math
import os
import time
from functools import cache

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

from ..review import queue as review
from ..review.audit_estimates import audit_report

bp = Blueprint("metrics", __name__)

IDENTIFY_REQUESTS = Counter(
    "reconcile_identify_requests",
    "POST /identify requests by match method and outcome",
    ["method", "outcome"],
)
IDENTIFY_LATENCY = Histogram(
    "reconcile_identify_duration_seconds",
    "POST /identify latency by match method",
    ["method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
DECISIONS = Counter(
    "reconcile_review_decisions",
    "Review decisions (confirmed, rejected, undone) and refusals (already_decided, superseded, ...)",
    ["outcome"],
)

IDENTIFY_ENDPOINT = "identify.identify"
METHODS = frozenset({"new", "exact", "probabilistic"})


def count_decision(outcome: str) -> None:
    DECISIONS.labels(outcome=outcome).inc()


class _QueueCollector:
    """The pending-queue gauge, read from the database when scraped."""

    def __init__(self, store) -> None:
        self.store = store

    def collect(self):
        gauge = GaugeMetricFamily("reconcile_review_queue_pending", "Review items waiting for a decision")
        gauge.add_metric([], review.pending_count(self.store))
        yield gauge
        report = audit_report(self.store)
        for name, text, estimate in (
            ("reconcile_audit_link_precision", "Precision of automatic links estimated from the audit sample", report.link_precision),
            ("reconcile_audit_close_nonlink_match_rate", "Share of close non-links that are true matches, from the audit sample", report.near_match_rate),
            ("reconcile_audit_held_nonlink_match_rate", "Share of guard-held pairs the model scores below the lower threshold that are true matches, from the audit sample", report.held_match_rate),
        ):
            family = GaugeMetricFamily(name, text + " (95% interval bounds)", labels=["bound"])
            for bound, value in (("estimate", estimate.share), ("low", estimate.low), ("high", estimate.high)):
                family.add_metric([bound], math.nan if value is None else value)
            yield family
        items = GaugeMetricFamily("reconcile_audit_items", "Audit review items by kind and state", labels=["kind", "state"])
        for kind, estimate in (("link", report.link_precision), ("near", report.near_match_rate), ("held", report.held_match_rate)):
            items.add_metric([kind, "decided"], estimate.decided)
            items.add_metric([kind, "pending"], estimate.pending)
        yield items
        rejected = GaugeMetricFamily("reconcile_audit_rejected_links", "Audited automatic links reviewers rejected (the group stays joined until a person detaches it)")
        rejected.add_metric([], report.rejected_links)
        yield rejected


def init_app(app: Flask) -> None:
    """Time ``/identify`` around the whole request, error handlers included, and serve ``/metrics``."""
    app.before_request(_start_timer)
    app.after_request(_observe)
    app.register_blueprint(bp)


def _start_timer() -> None:
    if request.endpoint == IDENTIFY_ENDPOINT:
        g.identify_started = time.perf_counter()


def _observe(response: Response) -> Response:
    started = g.pop("identify_started", None)
    if started is not None:
        observe_identify(response.status_code, g.pop("identify_method", None), started)
    return response


def observe_identify(status: int, reported_method: str | None, started: float) -> None:
    """Count one ``/identify`` answer and its latency since ``started`` (``perf_counter``):
    the after-request hook's work, and what the WSGI route of ``/identify``
    (:class:`reconcile.web.identify.IdentifyRoute`) calls for the answers it writes itself."""
    method = "none"
    if status < 400:
        outcome = "ok"
        method = reported_method if reported_method in METHODS else "other"
    else:
        outcome = "invalid" if status < 500 else "error"
    requests, latency = _series(method, outcome)
    requests.inc()
    latency.observe(time.perf_counter() - started)


@cache
def _series(method: str, outcome: str):
    """The counter and histogram children of one (method, outcome): ``labels()`` looks
    them up under a lock on every call, so each pair is resolved once per process (there
    are at most 5 x 3)."""
    return IDENTIFY_REQUESTS.labels(method=method, outcome=outcome), IDENTIFY_LATENCY.labels(method=method)


@bp.get("/metrics")
def metrics() -> Response:
    queue = CollectorRegistry(auto_describe=False)
    queue.register(_QueueCollector(current_app.extensions["reconcile"].store))
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        counters = CollectorRegistry()
        multiprocess.MultiProcessCollector(counters)
    else:
        counters = REGISTRY
    return Response(generate_latest(counters) + generate_latest(queue), mimetype=CONTENT_TYPE_LATEST)
