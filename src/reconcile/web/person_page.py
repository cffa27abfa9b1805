"""The review UI's person page at ``/review/persons``: search by email, phone or contact
id; see the group, how each contact was linked, its open review items, its history, and
the chain of links that joins two of its contacts.

Routes on the review UI's blueprint (same session login, headers and look as the queue),
thin over :mod:`reconcile.review.persons`, which the ``/persons`` JSON API uses too.
Read-only: nothing here writes.
"""
from __future__ import annotations

from flask import current_app, redirect, render_template, request, url_for

from ..review import persons as lookup
from ..review.queue import MAX_PAGE
from . import review_ui
from .errors import ApiError
from .reviews import int_arg

HISTORY_PER_PAGE = 50
MAX_QUERY = 320


@review_ui.bp.get("/persons")
def persons_search():
    """The search box; one group found opens its page, several are listed."""
    query = request.args.get("q", "").strip()[:MAX_QUERY]
    found = lookup.search(current_app.extensions["reconcile"].store, query, current_app.config["RECONCILE"].default_region) if query else []
    if len(found) == 1:
        return redirect(url_for("review_ui.person_page", contact_id=found[0]["primaryContactId"]))
    return render_template("review/persons.html", query=query, found=found)


@review_ui.bp.get("/persons/<int:contact_id>")
def person_page(contact_id: int):
    reconciler = current_app.extensions["reconcile"]
    try:
        page = int_arg("page", 1, MAX_PAGE)
    except ApiError as exc:
        return review_ui._error_page(exc.status, exc.message)
    other = request.args.get("why", "")
    try:
        person = lookup.person(reconciler.store, contact_id)
        history = lookup.history(reconciler.store, contact_id, page, HISTORY_PER_PAGE)
    except lookup.NotFound:
        return review_ui._error_page(404, f"Contact {contact_id} does not exist.")
    chain = why_error = None
    if other.isascii() and other.isdigit():
        try:
            chain = lookup.why(reconciler.store, contact_id, int(other), reconciler.guards)["links"]
        except lookup.PersonError as exc:
            why_error = exc.message
    return render_template(
        "review/person.html",
        contact_id=contact_id,
        person=person,
        history=history,
        other=other,
        chain=chain,
        why_error=why_error,
        page_links=review_ui._page_links(history.page, history.pages),
    )
