"""Charts as self-contained SVG files: no script, no CDN, no fonts to fetch; they open
offline in any browser and can be embedded with ``<img>``.

* :func:`pr_curve_svg`: precision against recall, one line per model (its points, when
  there are few), a dot at each model's operating point (its upper threshold), the
  legend under the plot;
* :func:`match_weights_svg`: each comparison level's match weight ``log2(m / u)`` as a
  horizontal bar, grouped by comparison, the prior on top, like Splink's match-weights
  chart.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

#: at most this many points per model are drawn as points rather than as a step line
FEW_POINTS = 40
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
FONT = "font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif"


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">\n'
        f"<title>{escape(title)}</title>\n"
        f'<rect width="{width}" height="{height}" fill="#fff"/>\n'
        f'<g style="{FONT}">\n' + "\n".join(body) + "\n</g>\n</svg>\n"
    )


def pr_curve_svg(
    curves: Mapping[str, Sequence[Mapping[str, float]]],
    markers: Mapping[str, Mapping[str, float]] | None = None,
    title: str = "Precision-recall",
) -> str:
    """``curves``: name -> points with ``precision`` and ``recall``; ``markers``: name ->
    the operating point to mark."""
    width = 580
    left, top, plot_w, plot_h = 80, 50, 440, 340
    body = [f'<text x="{width / 2}" y="28" text-anchor="middle" font-size="15" font-weight="600">{escape(title)}</text>']

    def x(recall: float) -> float:
        return left + plot_w * recall

    def y(precision: float) -> float:
        return top + plot_h * (1 - precision)

    for k in range(11):
        v = k / 10
        body.append(f'<line x1="{x(v):.1f}" y1="{top}" x2="{x(v):.1f}" y2="{top + plot_h}" stroke="#eee"/>')
        body.append(f'<line x1="{left}" y1="{y(v):.1f}" x2="{left + plot_w}" y2="{y(v):.1f}" stroke="#eee"/>')
        body.append(f'<text x="{x(v):.1f}" y="{top + plot_h + 18}" text-anchor="middle" font-size="11">{v:.1f}</text>')
        body.append(f'<text x="{left - 8}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11">{v:.1f}</text>')
    body.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#444"/>')
    body.append(f'<text x="{left + plot_w / 2}" y="{top + plot_h + 40}" text-anchor="middle" font-size="13">recall</text>')
    body.append(
        f'<text x="{left - 45}" y="{top + plot_h / 2}" text-anchor="middle" font-size="13" '
        f'transform="rotate(-90 {left - 45} {top + plot_h / 2})">precision</text>'
    )
    entries = []
    for i, (name, points) in enumerate(curves.items()):
        colour = PALETTE[i % len(PALETTE)]
        ordered = sorted(points, key=lambda p: (p["recall"], -p["precision"]))
        label = name
        if not ordered:
            label += " (no points)"
        elif len(ordered) <= FEW_POINTS:
            # a handful of cuts (a few dozen labels, or a model's listed thresholds): drawn as
            # points, because a step line through them hugs the plot's edges and reads as none
            label += f" ({len(ordered)} cut{'s' if len(ordered) != 1 else ''})"
            for p in ordered:
                body.append(
                    f'<circle cx="{x(p["recall"]):.1f}" cy="{y(p["precision"]):.1f}" r="4" fill="{colour}" fill-opacity=".75">'
                    f'<title>{escape(name)}: precision {p["precision"]:.4f}, recall {p["recall"]:.4f}</title></circle>'
                )
        else:
            # a step curve from recall 0, as precision is defined at each cut
            coords = [f"{x(0):.1f},{y(ordered[0]['precision']):.1f}"]
            for p in ordered:
                coords.append(f"{x(p['recall']):.1f},{y(p['precision']):.1f}")
            body.append(f'<polyline points="{" ".join(coords)}" fill="none" stroke="{colour}" stroke-width="2"/>')
        marker = (markers or {}).get(name)
        if marker is not None:
            body.append(
                f'<circle cx="{x(marker["recall"]):.1f}" cy="{y(marker["precision"]):.1f}" r="6" fill="{colour}" '
                f'stroke="#000"><title>{escape(name)}: precision {marker["precision"]:.4f}, '
                f'recall {marker["recall"]:.4f} at its upper threshold</title></circle>'
            )
        entries.append((colour, label))
    if markers:
        entries.append((None, "● at the upper threshold"))
    # the legend sits under the plot, one line per entry, full names: nothing is clipped
    legend_y = top + plot_h + 62
    for colour, label in entries:
        if colour is not None:
            body.append(f'<line x1="{left}" y1="{legend_y - 4}" x2="{left + 20}" y2="{legend_y - 4}" stroke="{colour}" stroke-width="3"/>')
        body.append(f'<text x="{left + 26}" y="{legend_y}" font-size="12">{escape(label)}</text>')
        legend_y += 18
    if not curves:
        body.append(f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" text-anchor="middle" font-size="13">no labelled pairs</text>')
    height = legend_y + 6
    return _svg(width, height, body, title)


def _weights(settings: Mapping) -> tuple[float, list[tuple[str, list[tuple[str, float]]]]]:
    prior = settings["probability_two_random_records_match"]
    groups = []
    for comparison in settings["comparisons"]:
        levels = []
        for level in comparison["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            m, u = level.get("m_probability"), level.get("u_probability")
            if m is None or u is None:
                continue
            label = level.get("label_for_charts") or level["sql_condition"]
            if level.get("tf_adjustment_column"):
                label += " (TF-adjusted)"
            levels.append((label, math.log2(max(m, 1e-300) / max(u, 1e-300))))
        groups.append((comparison.get("output_column_name", "?"), levels))
    return math.log2(prior / (1 - prior)), groups


def match_weights_svg(settings: Mapping, title: str = "Match weights") -> str:
    """Splink-style match-weights chart of a trained settings dict."""
    prior_weight, groups = _weights(settings)
    values = [prior_weight] + [w for _, levels in groups for _, w in levels]
    lo = min(0.0, *values)
    hi = max(0.0, *values)
    span = (hi - lo) or 1.0
    label_w, plot_w, row_h = 320, 420, 22
    rows = 1 + sum(len(levels) + 1 for _, levels in groups)
    width = label_w + plot_w + 90
    height = 70 + rows * row_h + 40
    top = 50
    body = [f'<text x="{width / 2}" y="28" text-anchor="middle" font-size="16" font-weight="600">{escape(title)}</text>']

    def x(w: float) -> float:
        return label_w + plot_w * (w - lo) / span

    # grid: integer weights
    step = max(1, int(math.ceil(span / 10)))
    tick = math.floor(lo / step) * step
    while tick <= hi:
        if tick >= lo:
            body.append(f'<line x1="{x(tick):.1f}" y1="{top}" x2="{x(tick):.1f}" y2="{top + rows * row_h}" stroke="#eee"/>')
            body.append(f'<text x="{x(tick):.1f}" y="{top + rows * row_h + 16}" text-anchor="middle" font-size="11">{tick:g}</text>')
        tick += step
    body.append(f'<line x1="{x(0):.1f}" y1="{top}" x2="{x(0):.1f}" y2="{top + rows * row_h}" stroke="#333"/>')
    body.append(
        f'<text x="{label_w + plot_w / 2}" y="{top + rows * row_h + 34}" text-anchor="middle" font-size="12">'
        "match weight (log2 Bayes factor; prior: log2 odds)</text>"
    )
    row = 0

    def bar(label: str, weight: float, colour: str, bold: bool = False) -> None:
        nonlocal row
        y = top + row * row_h
        x0, x1 = sorted((x(0), x(weight)))
        body.append(
            f'<rect x="{x0:.1f}" y="{y + 4}" width="{max(x1 - x0, 1):.1f}" height="{row_h - 8}" fill="{colour}">'
            f"<title>{escape(label)}: {weight:.3f}</title></rect>"
        )
        weight_text = f"{weight:+.2f}"
        # a negative bar's value goes right of the zero line, clear of the labels
        tx = x1 + 4 if weight >= 0 else x(0) + 4
        anchor = "start"
        body.append(f'<text x="{tx:.1f}" y="{y + row_h - 7}" text-anchor="{anchor}" font-size="10">{weight_text}</text>')
        weight_attr = ' font-weight="600"' if bold else ""
        body.append(
            f'<text x="{label_w - 10}" y="{y + row_h - 7}" text-anchor="end" font-size="11"{weight_attr}>{escape(label[:52])}</text>'
        )
        row += 1

    bar("prior (two random records match)", prior_weight, "#888", bold=True)
    for name, levels in groups:
        y = top + row * row_h
        body.append(f'<text x="10" y="{y + row_h - 6}" font-size="12" font-weight="600">{escape(name)}</text>')
        row += 1
        for label, weight in levels:
            bar(label, weight, "#2ca02c" if weight >= 0 else "#d62728")
    return _svg(width, height, body, title)
