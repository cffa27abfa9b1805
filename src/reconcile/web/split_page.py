"""The review UI's split proposals at ``/review/splits``: the pending ones, listed beside
the merge queue (a partial the queue page includes), and one page per proposal with
both sides, the bridge and its evidence, decided with the queue's keys (``c`` accepts
the split, ``r`` keeps the group, ``s`` skips).

Routes on the review UI's blueprint (same session login, CSRF and headers), thin over
:mod:`reconcile.review.splits`, which the ``/reviews/splits`` JSON API uses too.
"""
from __future__ import annotations

from flask import current_app, flash, g, redirect, render_template, url_for

from ..review import splits
from ..review.queue import ReviewError
from . import metrics, review_ui


@review_ui.bp.app_template_global()
def pending_splits(limit: int = 20) -> dict:
    """What the queue page's split partial shows: the oldest pending proposals."""
    return splits.list_splits(current_app.extensions["reconcile"].store, "pending", 1, limit)


@review_ui.bp.get("/splits/<int:split_id>")
def split_page(split_id: int):
    store = current_app.extensions["reconcile"].store
    try:
        item = splits.get_split(store, split_id)
    except ReviewError as exc:
        return review_ui._error_page(404, exc.message)
    following = [s["id"] for s in pending_splits()["items"] if s["id"] != split_id]
    return render_template("review/split.html", item=item, next_id=following[0] if following else None)


@review_ui.bp.post("/splits/<int:split_id>/<any(confirm, reject):decision>")
def decide_split(split_id: int, decision: str):
    reconciler = current_app.extensions["reconcile"]
    note = review_ui.form_note()
    try:
        if decision == "confirm":
            result = splits.confirm(reconciler.store, reconciler.guards, split_id, g.reviewer.username, note)
            d = result.detachment
            flash(f"Split #{split_id}: contacts {', '.join(map(str, d.detached_ids))} now form group {d.detached_primary_id}.", "ok")
        else:
            result = splits.reject(reconciler.store, split_id, g.reviewer.username, note)
            flash(f"Kept the group of split #{split_id} together.", "ok")
    except ReviewError as exc:
        metrics.count_decision(exc.code)
        flash(exc.message, "error")
        return redirect(url_for("review_ui.split_page", split_id=split_id))
    metrics.count_decision(result.status)
    following = pending_splits(1)["items"]
    if following:
        return redirect(url_for("review_ui.split_page", split_id=following[0]["id"]))
    return redirect(url_for("review_ui.queue"))
