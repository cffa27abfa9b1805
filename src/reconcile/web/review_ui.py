"""The reviewer's web UI at ``/review/``: log in, work through the queue from the keyboard.

Server-rendered (Jinja, autoescaped) from the top-level ``review_ui/`` folder; the
only script is ``review_ui/static/review.js`` (keyboard shortcuts, select-all), which
never writes data into the page. Every state change is a POST form carrying the
session's CSRF token; a Content-Security-Policy forbids anything not served from here.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from math import isfinite
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from markupsafe import Markup, escape

from ..config import PROJECT_ROOT
from ..review import cases as review_cases
from ..review import queue as review
from ..review.explain import format_score
from . import auth, metrics
from .errors import ApiError
from .ids import MAX_ID
from .reviews import bands, int_arg

UI_ROOT = PROJECT_ROOT / "review_ui"

bp = Blueprint(
    "review_ui",
    __name__,
    url_prefix="/review",
    template_folder=str(UI_ROOT / "templates"),
    static_folder=str(UI_ROOT / "static"),
    static_url_path="/static",
)

PUBLIC_ENDPOINTS = frozenset({"review_ui.login", "review_ui.static"})
PER_PAGE_CHOICES = (25, 50, 100, 200)
_ASCII_DIGITS = re.compile(r"[0-9]{1,10}")
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


def _store():
    return current_app.extensions["reconcile"].store


def _order() -> review.Order:
    return "age" if request.values.get("order") == "age" else "score"


def _safe_next(target: str | None, default: str) -> str:
    """Only redirect within the review UI (no open redirects)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/review/"):
        return default
    return target


# --- authentication -----------------------------------------------------------------


@bp.before_request
def _require_login():
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    user = auth.session_reviewer()
    if user is None:
        return redirect(url_for("review_ui.login", next=request.full_path.rstrip("?")))
    if request.method not in auth.SAFE_METHODS and not auth.csrf_ok():
        return _error_page(403, "This form has expired or did not come from this site. Reload the page and try again.")
    g.reviewer = user
    return None


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if request.endpoint != "review_ui.static":
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/login", methods=["GET", "POST"])
def login():
    target = _safe_next(request.values.get("next"), url_for("review_ui.queue"))
    error = None
    if request.method == "POST":
        if not auth.csrf_ok():
            error = "The login form expired; please try again."
        else:
            user = auth.check_login(request.form.get("username", "").strip(), request.form.get("password", ""))
            if user is not None:
                auth.login(user)
                return redirect(target)
            error = "Unknown username or wrong password."
    status = 401 if error else 200
    return render_template("review/login.html", error=error, next=target), status


@bp.post("/logout")
def logout():
    auth.logout()
    return redirect(url_for("review_ui.login"))


@bp.post("/blind")
def toggle_blind():
    """Blind mode hides scores and weights, so the evidence is judged on its own."""
    session["blind"] = not session.get("blind", False)
    return redirect(_safe_next(request.form.get("back"), url_for("review_ui.queue")))


# --- the queue ----------------------------------------------------------------------


@bp.get("/")
def queue():
    status = request.args.get("status", "pending")
    if status not in review.STATUSES and status != "all":
        status = "pending"
    order = _order()
    try:  # the JSON API's rule: out of range is refused, not capped
        number = int_arg("page", 1, review.MAX_PAGE)
        per_page = int_arg("per_page", 50, review.MAX_PER_PAGE)
    except ApiError as exc:
        return _error_page(exc.status, exc.message)
    known = bands()
    if status == "pending":  # read as cases: items touching the same groups, decided together
        page, case_page = None, review_cases.list_cases(_store(), order, number, per_page, known)
        pages = case_page.pages
    else:
        page, case_page = review.list_items(_store(), None if status == "all" else status, order, number, per_page, known), None
        pages = page.pages
    return render_template(
        "review/queue.html",
        page=page,
        counts=review.counts(_store()) if page is None else page.counts,
        case_page=case_page,
        pages=pages,
        current_page=number,
        status=status,
        order=order,
        per_page=per_page,
        per_page_choices=PER_PAGE_CHOICES,
        page_links=_page_links(number, pages),
        first_pending=review.first_pending(_store(), order),
    )


def _page_links(current: int, last: int) -> list[int | None]:
    """First, last, and two either side of the current page; ``None`` marks a gap."""
    wanted = sorted({1, last, *range(max(1, current - 2), min(last, current + 2) + 1)})
    links: list[int | None] = []
    for number in wanted:
        if links and links[-1] is not None and number - links[-1] > 1:
            links.append(None)
        links.append(number)
    return links


def _ids(values: list[str]) -> list[int]:
    """Ids from form values, each one id or a case's ids joined by commas; ASCII digits
    within the id range only (str.isdigit() also takes '²', which int() refuses)."""
    found = [part for value in values for part in value.split(",")]
    return [int(i) for i in found if _ASCII_DIGITS.fullmatch(i) and 1 <= int(i) <= MAX_ID]


@bp.post("/bulk")
def bulk():
    """Decide every selected item (a selected case: each of its items), each on its own;
    the page then says what became of every one of them."""
    decision = request.form.get("decision")
    ids = _ids(request.form.getlist("ids"))
    back = _safe_next(request.form.get("back"), url_for("review_ui.queue"))
    if decision not in ("confirm", "reject") or not ids:
        flash("Select at least one item, then confirm or reject.", "error")
        return redirect(back)
    note = form_note()
    outcomes = review.decide_many(_store(), ids, g.reviewer.username, decision, note)
    done = [o for o in outcomes if isinstance(o, review.DecisionResult)]
    for outcome in outcomes:
        metrics.count_decision(outcome.status if isinstance(outcome, review.DecisionResult) else outcome.code)
    verb = "Confirmed" if decision == "confirm" else "Rejected"
    listed = ", ".join(f"#{o.id}" for o in done)
    flash(f"{verb} {len(done)} of {len(outcomes)} item(s){': ' + listed if listed else ''}.", "ok")
    for exc in outcomes:
        if isinstance(exc, review.ReviewError):
            flash(f"#{exc.item_id} not {verb.lower()}: {exc.message}", "error")
    return redirect(back)


# --- one case -------------------------------------------------------------------------


@bp.get("/cases/<int:item_id>")
def case(item_id: int):
    """All the groups a case joins, side by side; the reviewer says which are one person."""
    try:
        data = review_cases.get_case(_store(), item_id, bands())
    except review.NotFound:
        return redirect(url_for("review_ui.item", item_id=item_id, order=_order()))
    if data["pairs"] == 1:
        return redirect(url_for("review_ui.item", item_id=item_id, order=_order()))
    return render_template(
        "review/case.html",
        case=data,
        order=_order(),
        blind=session.get("blind", False),
        shown=case_contacts(data),
        letters=PERSON_LETTERS[: len(data["groups"])],
    )


PERSON_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@bp.post("/cases/<int:item_id>/decide")
def decide_case(item_id: int):
    """The case form: ``person-<group>`` = a person's letter for each group."""
    order = _order()
    item_ids = _ids(request.form.getlist("items"))
    persons: dict[str, list[int]] = {}
    for key, value in request.form.items():
        if key.startswith("person-") and _ASCII_DIGITS.fullmatch(key[7:]) and value in PERSON_LETTERS:
            persons.setdefault(value, []).append(int(key[7:]))
    note = form_note()
    try:
        results = review_cases.decide_case(_store(), item_ids, list(persons.values()), g.reviewer.username, note)
    except (review.ReviewError, ValueError) as exc:
        metrics.count_decision(getattr(exc, "code", "invalid_case"))
        flash(getattr(exc, "message", str(exc)), "error")
        return redirect(url_for("review_ui.case", item_id=item_id, order=order))
    for result in results:
        metrics.count_decision(result.status)
    merged = sum(r.status == "confirmed" for r in results)
    flash(
        f"Case #{min(item_ids)}: {len(persons)} person(s); {merged} pair(s) confirmed, {len(results) - merged} rejected "
        f"({', '.join(f'#{r.id} {r.status}' for r in results)}).",
        "ok",
    )
    return _to_next_case(order)


def _to_next_case(order: review.Order):
    """After a case: the head of the queue (a case, or a single pair's item page)."""
    head = review_cases.list_cases(_store(), order, 1, 1).cases
    if not head:
        flash("The queue is empty.", "ok")
        return redirect(url_for("review_ui.queue", order=order))
    endpoint = "review_ui.case" if head[0]["pairs"] > 1 else "review_ui.item"
    return redirect(url_for(endpoint, item_id=head[0]["id"], order=order))


# --- one item -----------------------------------------------------------------------


@bp.get("/items/<int:item_id>")
def item(item_id: int):
    order = _order()
    try:
        data = review.get_item(_store(), item_id, bands())
    except review.NotFound:
        return _error_page(404, f"Review {item_id} does not exist.")
    blind = session.get("blind", False)
    shown_sides = data["seen"] or data
    shared = agreement(shown_sides["left"]["contacts"], shown_sides["right"]["contacts"])
    return render_template(
        "review/item.html",
        item=data,
        sides=[shown_sides["left"], shown_sides["right"]],
        shown={
            side["primaryId"]: contacts_that_matter(side["contacts"], shared, {data["contactId"], data["candidateId"]})
            for side in (shown_sides["left"], shown_sides["right"])
        },
        in_case=_in_case(item_id) if data["status"] == "pending" else None,
        order=order,
        blind=blind,
        agreement=shared,
        waterfall=None if blind else waterfall(data.get("evidence"), data.get("matchWeight")),
        levels=evidence_levels(data.get("evidence")),
        next_id=review.neighbour(_store(), item_id, order, "next"),
        prev_id=review.neighbour(_store(), item_id, order, "prev"),
        last_decision=review.last_decision(_store(), g.reviewer.username),
        age=humanise_age(data["ageSeconds"]),
    )


@bp.post("/items/<int:item_id>/<any(confirm, reject):decision>")
def decide(item_id: int, decision: str):
    order = _order()
    note = form_note()
    try:
        result = review.decide(_store(), item_id, g.reviewer.username, decision, note)
    except review.ReviewError as exc:
        metrics.count_decision(exc.code)
        flash(exc.message, "error")
        return redirect(url_for("review_ui.item", item_id=item_id, order=order))
    metrics.count_decision(result.status)
    flash(_decided_message(item_id, result), "ok")
    return _to_next_pending(item_id, order)


def _decided_message(item_id: int, result: review.DecisionResult) -> str:
    """What a decision did. An audited automatic link was made already, so deciding it
    merges nothing and keeps no groups apart: it is recorded (a label; a rejection is listed
    for a person to split on the admin page), and the group stays as it is."""
    if result.status == "confirmed" and result.primary_id is not None:
        return f"Confirmed #{item_id}: group {result.merged_primary_id} merged into group {result.primary_id}. Press u to undo."
    if result.status == "rejected" and result.cannot_link is not None:
        return f"Rejected #{item_id}: groups {result.cannot_link[0]} and {result.cannot_link[1]} stay apart. Press u to undo."
    return f"{result.status.capitalize()} #{item_id}: recorded; the group stays as it is. Press u to undo."


def form_note() -> str | None:
    """The optional note of a form decision: trimmed, at most 2,000 characters, without
    NUL characters (PostgreSQL's text refuses them; a browser never sends one)."""
    return (request.form.get("note") or "").replace("\x00", "").strip()[:2000] or None


def _to_next_pending(item_id: int, order: review.Order):
    """After a decision: the next pending item in the queue's order, wrapping round once."""
    store = _store()
    target = review.neighbour(store, item_id, order, "next") or review.first_pending(store, order)
    if target is None:
        flash("The queue is empty.", "ok")
        return redirect(url_for("review_ui.queue", order=order))
    return redirect(url_for("review_ui.item", item_id=target, order=order))


@bp.post("/undo")
def undo_last():
    """Undo this reviewer's most recent decision that is still in force."""
    item_id = review.last_decision(_store(), g.reviewer.username)
    if item_id is None:
        flash("You have no decision to undo.", "error")
        return redirect(_safe_next(request.form.get("back"), url_for("review_ui.queue")))
    return _undo(item_id)


@bp.post("/items/<int:item_id>/undo")
def undo_item(item_id: int):
    return _undo(item_id)


def _undo(item_id: int):
    try:
        result = review.undo(_store(), item_id, g.reviewer.username, admin=g.reviewer.is_admin)
    except review.ReviewError as exc:
        flash(exc.message, "error")
    else:
        metrics.count_decision("undone")
        after = "it is pending again" if result.status == "pending" else f"it is closed as {result.status}"
        flash(f"Undid the decision on #{item_id}; {after}.", "ok")
    return redirect(url_for("review_ui.item", item_id=item_id, order=_order()))


def _in_case(item_id: int) -> dict[str, Any] | None:
    """The case an item belongs to when it holds other items too, for a link to it."""
    try:
        found = review_cases.case_of(_store(), item_id)
    except review.NotFound:
        return None
    return {"id": found.id, "pairs": len(found.item_ids), "groups": len(found.groups)} if len(found.item_ids) > 1 else None


def _error_page(status: int, message: str):
    return render_template("review/error.html", status=status, message=message), status


# --- presentation helpers -----------------------------------------------------------


FIELDS = (("email", "email"), ("phoneNumber", "phone"), ("name", "name"))


def agreement(left: list[dict[str, Any]], right: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Per field, the values both sides have (names compared case-insensitively)."""
    shared: dict[str, set[str]] = {}
    for key, _ in FIELDS:
        lvals = {_comparable(key, c[key]) for c in left if c[key]}
        rvals = {_comparable(key, c[key]) for c in right if c[key]}
        shared[key] = lvals & rvals
    return shared


#: a group larger than this shows the contacts that matter first, the rest behind "show all"
COLLAPSE_OVER = 6


def contacts_that_matter(
    contacts: list[dict[str, Any]], shared: dict[str, set[str]], scored: set[int | None]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(shown, folded) for a large group: the primary, the scored contacts and those
    holding a value the other side holds too are shown; the rest fold away."""
    if len(contacts) <= COLLAPSE_OVER:
        return contacts, []
    shown, folded = [], []
    for n, c in enumerate(contacts):
        agrees = any(c[key] and _comparable(key, c[key]) in shared[key] for key, _ in FIELDS)
        (shown if n == 0 or c["id"] in scored or agrees else folded).append(c)
    return shown, folded


def case_contacts(case: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Per group of a case: ``shown`` and ``folded`` contacts (a value another group of
    the case holds too, or a contact an item scored, is what matters) and ``shared``,
    the values it has in common with the other groups (what ``value_class`` marks)."""
    scored = {i for item in case["items"] for i in (item["contactId"], item["candidateId"])}
    found = {}
    for group in case["groupMembers"]:
        others = [c for g in case["groupMembers"] if g is not group for c in g["contacts"]]
        shared = agreement(group["contacts"], others)
        shown, folded = contacts_that_matter(group["contacts"], shared, scored)
        found[group["primaryId"]] = {"shown": shown, "folded": folded, "shared": shared}
    return found


def _comparable(key: str, value: str) -> str:
    return " ".join(value.casefold().split()) if key == "name" else value


def value_class(key: str, value: str | None, shared: dict[str, set[str]]) -> str:
    """``agree`` when the other side has the value too, ``differ`` otherwise."""
    if not value:
        return "empty"
    return "agree" if _comparable(key, value) in shared[key] else "differ"


def comparisons(evidence: Any) -> list[dict[str, Any]]:
    """The per-comparison entries of an item's evidence: the scorer records them under
    ``comparisons`` beside the totals; a bare list of them is accepted too."""
    if isinstance(evidence, dict):
        evidence = evidence.get("comparisons")
    if not isinstance(evidence, list):
        return []
    return [e for e in evidence if isinstance(e, dict)]


def evidence_levels(evidence: Any) -> list[dict[str, Any]]:
    """The comparisons without their weights (what blind mode still shows)."""
    return [
        {"comparison": str(e.get("comparison", "?")), "level": str(e.get("level", ""))}
        for e in comparisons(evidence)
        if not _is_prior(e)
    ]


def _is_prior(entry: dict[str, Any]) -> bool:
    return str(entry.get("comparison", "")).lower() in ("prior", "lambda", "prior (lambda)")


def _weight(entry: dict[str, Any]) -> float | None:
    value = entry.get("weight", entry.get("match_weight"))
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not isfinite(value):
        return None
    return float(value)


WATERFALL_WIDTH = 760
LABEL_WIDTH = 280
VALUE_WIDTH = 70
ROW_HEIGHT = 30
BAR_HEIGHT = 18


def waterfall(evidence: Any, match_weight: float | None) -> dict[str, Any] | None:
    """SVG geometry of the match-weight waterfall: start at the prior, each comparison's
    weight pushes the running total up or down, end at the final match weight.

    The prior is the ``prior`` entry when the evidence has one; else whatever makes the
    steps add up to the recorded match weight (0 when there is none).
    """
    steps = [(e, _weight(e)) for e in comparisons(evidence)]
    steps = [(e, w) for e, w in steps if w is not None]
    if not steps:
        return None
    priors = [w for e, w in steps if _is_prior(e)]
    moves = [(e, w) for e, w in steps if not _is_prior(e)]
    total = sum(w for _, w in moves)
    if priors:
        prior = priors[0]
    elif match_weight is not None:
        prior = match_weight - total
    else:
        prior = 0.0
    final = prior + total

    rows: list[dict[str, Any]] = [{"label": "prior", "start": 0.0, "end": prior, "kind": "prior", "weight": prior}]
    running = prior
    for entry, weight in moves:
        text = str(entry.get("comparison", "?"))
        if entry.get("level"):
            text += f" · {entry['level']}"
        kind = "up" if weight > 0 else "down" if weight < 0 else "flat"
        rows.append({"label": text, "start": running, "end": running + weight, "kind": kind, "weight": weight})
        running += weight
    rows.append({"label": "final match weight", "start": 0.0, "end": final, "kind": "final", "weight": final})

    low = min(0.0, *(min(r["start"], r["end"]) for r in rows))
    high = max(0.0, *(max(r["start"], r["end"]) for r in rows))
    span = (high - low) or 1.0
    plot = WATERFALL_WIDTH - LABEL_WIDTH - VALUE_WIDTH

    def x(value: float) -> float:
        return round(LABEL_WIDTH + (value - low) / span * plot, 1)

    for i, row in enumerate(rows):
        left, right = sorted((x(row["start"]), x(row["end"])))
        row.update(
            x=left,
            width=max(right - left, 1.5),
            y=i * ROW_HEIGHT + (ROW_HEIGHT - BAR_HEIGHT) / 2,
            text_y=i * ROW_HEIGHT + ROW_HEIGHT / 2 + 4,
            link_x=x(row["end"]),
            signed=f"{row['weight']:+.2f}",
        )
    return {
        "rows": rows,
        "width": WATERFALL_WIDTH,
        "height": len(rows) * ROW_HEIGHT,
        "zero_x": x(0.0),
        "bar_height": BAR_HEIGHT,
        "value_x": WATERFALL_WIDTH - 4,
        "final": final,
        "probability": _probability(final),
    }


def _probability(weight: float) -> float:
    """Match probability of a match weight (log2 Bayes factor incl. the prior), overflow-safe."""
    if weight >= 0:
        return 1 / (1 + 2 ** -weight)
    odds = 2**weight
    return odds / (1 + odds)


def humanise_age(seconds: int) -> str:
    """'just now', '12 min ago', '3 h ago', '5 d ago'."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "just now"


@bp.app_template_filter("age")
def _age_filter(seconds: int) -> str:
    return humanise_age(seconds)


@bp.app_template_filter("when")
def _when_filter(value: str | None) -> str:
    """An ISO timestamp as 'YYYY-MM-DD HH:MM UTC'."""
    if not value:
        return ""
    return datetime.fromisoformat(value).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


@bp.app_template_filter("breakable")
def _breakable(value: str | None) -> Markup:
    """An email or phone that wraps only after ``@`` and dots: each piece unbreakable
    (``.nb``), a ``<wbr>`` between them; everything escaped."""
    if not value:
        return Markup("")
    pieces = re.split(r"(?<=[@.])", str(value))
    return Markup("<wbr>").join(Markup('<span class="nb">%s</span>') % escape(p) for p in pieces if p)


@bp.app_template_filter("score")
def _score_filter(value: float | None, places: int = 3) -> str:
    """A probability as :func:`reconcile.review.explain.format_score` writes it."""
    return "–" if value is None else format_score(value, places)


@bp.app_template_filter("threshold")
def _threshold_filter(value: float | None) -> str:
    """A threshold to at most four decimals (0.9908034444362824 reads 0.9908)."""
    if value is None:
        return "–"
    return f"{value:.4f}".rstrip("0").rstrip(".") or "0"


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    return {"value_class": value_class}
