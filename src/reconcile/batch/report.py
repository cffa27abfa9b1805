"""The report of a re-resolution: JSON for tools (``--report PATH``) and a summary table
for the terminal. Contacts are named by id; values are read from the store by whoever
looks (as review evidence is), so a report file holds no customer's email or phone."""
from __future__ import annotations

from typing import Any

from .diff import MergeProposal, SplitProposal
from .flow import Resolution

REPORT_VERSION = 1


def as_json(resolution: Resolution, applied: dict[str, Any] | None = None) -> dict[str, Any]:
    d = resolution.diff
    return {
        "reportVersion": REPORT_VERSION,
        "engine": resolution.engine_name,
        "modelVersion": resolution.model_version,
        "modelPath": resolution.model_path,
        "threshold": resolution.threshold,
        "counts": {
            "contacts": len(resolution.snapshot.ids),
            "liveGroups": d.live_groups,
            "batchClusters": d.batch_clusters,
            "modelLinksAtThreshold": resolution.links_scored,
            "pairsExplained": len(resolution.pairs),
            "linksAccepted": len(resolution.clusters.accepted),
            "linksRefused": len(resolution.clusters.refused),
            "unchangedGroups": d.unchanged,
            "proposedMerges": len(d.merges),
            "suspectedOverMerges": len(d.splits),
        },
        "proposedMerges": [_merge(m, resolution.model_version) for m in d.merges],
        "suspectedOverMerges": [_split(s, resolution.model_version) for s in d.splits],
        "seconds": {k: round(v, 3) for k, v in resolution.timings.items()},
        "applied": applied,
    }


def _merge(m: MergeProposal, version: str | None) -> dict[str, Any]:
    return {
        "primaryContactIds": list(m.primary_ids),
        "pair": [m.contact_id, m.candidate_id],
        "link": m.link,
        "evidence": m.pair.evidence(version) if m.pair else None,
    }


def _split(s: SplitProposal, version: str | None) -> dict[str, Any]:
    return {
        "primaryContactId": s.primary_id,
        "keptContactIds": list(s.kept_ids),
        "detachedContactIds": list(s.detached_ids),
        "bridge": {
            "contactId": s.contact_id,
            "bridgeContactId": s.bridge_contact_id,
            "refusedBy": s.refused_by,
            "crossingPairs": s.crossing_pairs,
            "evidence": s.pair.evidence(version) if s.pair else None,
        },
    }


def summary(report: dict[str, Any], limit: int = 20) -> str:
    """A plain-text summary: counts, then the first ``limit`` proposals of each kind."""
    c = report["counts"]
    lines = [
        f"reconcile resolve on {report['engine']}, model {report['modelVersion']} (threshold {report['threshold']})",
        "",
        f"{'contacts':<24}{c['contacts']:>10}",
        f"{'live groups':<24}{c['liveGroups']:>10}",
        f"{'batch clusters':<24}{c['batchClusters']:>10}",
        f"{'unchanged groups':<24}{c['unchangedGroups']:>10}",
        f"{'proposed merges':<24}{c['proposedMerges']:>10}",
        f"{'suspected over-merges':<24}{c['suspectedOverMerges']:>10}",
        f"{'seconds':<24}{report['seconds'].get('total', 0):>10.1f}",
    ]
    if report["proposedMerges"]:
        lines += ["", "proposed merges", f"{'groups':<18}{'pair':<18}{'link':<14}{'p':>10}{'weight':>9}  strongest comparison"]
        for m in report["proposedMerges"][:limit]:
            lines.append(_row("+".join(map(str, m["primaryContactIds"])), m["pair"], m["link"], m["evidence"]))
    if report["suspectedOverMerges"]:
        lines += ["", "suspected over-merges (bridge: leaving contact - kept contact)", f"{'group':<18}{'bridge':<18}{'refused by':<14}{'p':>10}{'weight':>9}  strongest comparison"]
        for s in report["suspectedOverMerges"][:limit]:
            b = s["bridge"]
            lines.append(_row(str(s["primaryContactId"]), [b["contactId"], b["bridgeContactId"]], b["refusedBy"] or "", b["evidence"]))
    for kind in ("proposedMerges", "suspectedOverMerges"):
        if len(report[kind]) > limit:
            lines.append(f"... {len(report[kind]) - limit} more {kind} in the JSON report")
    if report.get("applied"):
        a = report["applied"]
        lines += ["", f"applied: {len(a['pendingMergeIds'])} pending merges, {len(a['splitProposalIds'])} split proposals opened; {a['alreadyProposed']} proposed before"]
    return "\n".join(lines)


def _row(group: str, pair: list[int], link: str, evidence: dict | None) -> str:
    if evidence is None:
        return f"{group:<18}{'-'.join(map(str, pair)):<18}{link:<14}{'':>10}{'':>9}  (not scored)"
    top = max(evidence["comparisons"], key=lambda c: c["weight"])
    return (
        f"{group:<18}{'-'.join(map(str, pair)):<18}{link:<14}{evidence['matchProbability']:>10.6f}"
        f"{evidence['matchWeight']:>9.2f}  {top['comparison']}: {top['level']}"
    )
