"""The scene panels' charts, drawn by the server as SVG (no chart library); every text escaped."""

from __future__ import annotations

import math
from dataclasses import dataclass
from xml.sax.saxutils import escape

from api.screen.labels import CATEGORY_LABELS, SERVICE_LABELS

MAX_CHART_ROWS = 10  # a chart of grids shows the busiest ten


def scene_charts(data: dict) -> dict[str, str]:
    """The SVG charts of the scene panels (the longest lists cut to their top rows)."""
    governance, parking, services, party = data["governance"], data["parking"], data["services"], data["party"]
    by_category = [(CATEGORY_LABELS.get(r["category"], r["category"]), [r["open"], r["closed"]])
                   for r in governance["by_category"]]
    grids = sorted(governance["by_grid"], key=lambda r: (-r["open"], -r["closed"], r["code"]))[:MAX_CHART_ROWS]
    by_grid = [(r["name"], [r["open"], r["closed"]]) for r in grids]
    safety = [(CATEGORY_LABELS[c], [v["today"], v["last_7_days"], v["open"]]) for c, v in data["safety"].items()]
    branches = sorted(party["branches_by_grid"], key=lambda r: (-r["members"], r["code"]))[:MAX_CHART_ROWS]
    branch_texts = [f"{r['branches']}个支部 · {r['members']}人" for r in branches]
    open_closed = ("未办结 open", "已办结 closed")
    return {
        "governance_by_category": bar_chart_svg(rows=by_category, series=open_closed, colours=("#ff8c1a", "#4a6a8a")),
        "governance_by_grid": bar_chart_svg(rows=by_grid, series=open_closed, colours=("#ff8c1a", "#4a6a8a")),
        "safety": bar_chart_svg(rows=safety, series=("今日 today", "近7日 7 days", "未办结 open"),
                                colours=("#ff4d4f", "#ffd23f", "#ff8c1a"), grouped=True),
        "parking": donut_chart_svg(parts=[("空闲 free", parking["free"], "#52d273"),
                                          ("占用 occupied", parking["occupied"], "#ff4d4f"),
                                          ("未知 unknown", parking["unknown"], "#5b6b7f")]),
        "services": donut_chart_svg(parts=[(SERVICE_LABELS.get(k, k), v, c) for (k, v), c in
                                           zip(sorted(services["by_category"].items()),
                                               ("#ffd23f", "#3fb6ff", "#d46bff", "#52d273"))]),
        "party_branches": bar_chart_svg(rows=[(r["name"], [r["members"]]) for r in branches],
                                        series=("党员 members",), colours=("#ff4d4f",), row_height=20,
                                        value_texts=branch_texts),
    }


@dataclass(frozen=True)
class _Box:
    width: int = 400
    label_width: int = 120
    row_height: int = 22
    legend_height: int = 22


def bar_chart_svg(*, rows: list[tuple[str, list[int]]], series: tuple[str, ...], colours: tuple[str, ...],
                  grouped: bool = False, row_height: int = 22, value_texts: list[str] | None = None) -> str:
    """Horizontal bars, one row per label: stacked series, or side by side when ``grouped``.

    Each row ends with its values joined by '/', or with its entry of ``value_texts``.
    """
    box = _Box(row_height=row_height)
    height = box.legend_height + max(1, len(rows)) * box.row_height + 4
    plot = box.width - box.label_width - (100 if value_texts else 40)
    totals = [max(values) if grouped else sum(values) for _, values in rows]
    top = max(totals, default=0) or 1
    parts = [_svg_open(box.width, height), _legend(series, colours)]
    for n, (label, values) in enumerate(rows):
        y = box.legend_height + n * box.row_height
        middle = y + box.row_height / 2 + 5
        parts.append(f'<text x="{box.label_width - 6}" y="{middle:.1f}" text-anchor="end" class="om-chart-label">'
                     f"{escape(_short(label, 9))}</text>")
        x = float(box.label_width)
        bar_h = (box.row_height - 6) / (len(values) if grouped else 1)
        for k, value in enumerate(values):
            w = plot * value / top
            by = y + 3 + (k * bar_h if grouped else 0)
            parts.append(f'<rect x="{x:.1f}" y="{by:.1f}" width="{w:.1f}" height="{bar_h:.1f}" '
                         f'fill="{colours[k % len(colours)]}"><title>{escape(label)} · {escape(series[k])}: '
                         f"{value}</title></rect>")
            if not grouped:
                x += w
        end = box.label_width + plot * (totals[n] / top)
        text = value_texts[n] if value_texts else "/".join(str(v) for v in values)
        parts.append(f'<text x="{end + 4:.1f}" y="{middle:.1f}" class="om-chart-value">{escape(text)}</text>')
    if not rows:
        parts.append(f'<text x="{box.width / 2}" y="{box.legend_height + 15}" text-anchor="middle" '
                     'class="om-chart-label">无数据 no data</text>')
    parts.append("</svg>")
    return "".join(parts)


def donut_chart_svg(*, parts: list[tuple[str, int, str]]) -> str:
    """A donut of shares with a legend of labels and counts beside it."""
    width, height, cx, cy, r, inner = 400, 160, 80, 80, 70, 42
    total = sum(value for _, value, _ in parts)
    out = [_svg_open(width, height)]
    if total == 0:
        out.append(f'<circle cx="{cx}" cy="{cy}" r="{(r + inner) / 2}" fill="none" stroke="#2a3a4f" '
                   f'stroke-width="{r - inner}"/>')
    angle = -math.pi / 2
    for label, value, colour in parts:
        if value <= 0:
            continue
        sweep = 2 * math.pi * value / total
        out.append(f'<path d="{_arc_path(cx, cy, r, inner, angle, min(sweep, 2 * math.pi - 1e-4))}" '
                   f'fill="{colour}"><title>{escape(label)}: {value}</title></path>')
        angle += sweep
    out.append(f'<text x="{cx}" y="{cy + 7}" text-anchor="middle" class="om-chart-total">{total}</text>')
    for n, (label, value, colour) in enumerate(parts):
        y = 30 + n * 26
        share = f"{100 * value / total:.0f}%" if total else "–"
        out.append(f'<rect x="176" y="{y - 12}" width="14" height="14" fill="{colour}"/>'
                   f'<text x="198" y="{y}" class="om-chart-label">{escape(label)} {value} ({share})</text>')
    out.append("</svg>")
    return "".join(out)


def _svg_open(width: int, height: float) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height:.0f}" '
            f'class="om-chart" role="img" preserveAspectRatio="xMinYMin meet">')


def _legend(series: tuple[str, ...], colours: tuple[str, ...]) -> str:
    out, x = [], 4
    for name, colour in zip(series, colours):
        out.append(f'<rect x="{x}" y="5" width="12" height="12" fill="{colour}"/>'
                   f'<text x="{x + 16}" y="15" class="om-chart-legend">{escape(name)}</text>')
        x += 24 + 9 * len(name)
    return "".join(out)


def _arc_path(cx: float, cy: float, r: float, inner: float, start: float, sweep: float) -> str:
    end = start + sweep
    large = 1 if sweep > math.pi else 0
    p = [(cx + r * math.cos(start), cy + r * math.sin(start)), (cx + r * math.cos(end), cy + r * math.sin(end)),
         (cx + inner * math.cos(end), cy + inner * math.sin(end)),
         (cx + inner * math.cos(start), cy + inner * math.sin(start))]
    return (f"M{p[0][0]:.2f},{p[0][1]:.2f} A{r},{r} 0 {large} 1 {p[1][0]:.2f},{p[1][1]:.2f} "
            f"L{p[2][0]:.2f},{p[2][1]:.2f} A{inner},{inner} 0 {large} 0 {p[3][0]:.2f},{p[3][1]:.2f} Z")


def _short(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"
