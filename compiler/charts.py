"""Charts of a corpus version, drawn offline: each function takes plain, already aggregated data (lists
and dicts of numbers and labels, never store rows) and returns the chart as an SVG string, or as PNG
bytes with ``fmt="png"``.

A chart is a Vega-Lite spec rendered by ``vl-convert`` (a self-contained renderer: no browser, no
network, no JavaScript on the page that shows it). The specs are small on purpose: the data they carry
is the aggregate a table under the chart also prints, so a chart's size does not grow with the corpus.

Used by the HTML report (:mod:`compiler.report_html`, inline SVG) and by the dataset card
(:mod:`compiler.card`, PNG files beside the README).
"""

from __future__ import annotations

import re
from typing import Any, Literal

Format = Literal["svg", "png"]
WIDTH = 520
KEPT = "kept"
_PALETTE = {"scheme": "tableau10"}


def render(spec: dict[str, Any], fmt: Format = "svg", *, key: str = "c") -> str | bytes:
    """A Vega-Lite spec drawn as SVG text (its element ids prefixed with ``key``, so several charts can
    share one page) or as PNG bytes (twice the nominal size, for sharp images in a card)."""
    import vl_convert as vlc

    spec = {"config": {"view": {"stroke": None}, "font": "sans-serif", "axis": {"labelLimit": 220}}, **spec}
    if fmt == "png":
        return vlc.vegalite_to_png(spec, scale=2)
    return _scope_ids(vlc.vegalite_to_svg(spec), key)


def _scope_ids(svg: str, key: str) -> str:
    """Prefix the SVG's ids and their ``url(#...)`` uses: inline SVGs share one id space."""
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{key}-{m.group(1)}"', svg)
    return re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{key}-{m.group(1)})", svg)


def _bar(values: list[dict[str, Any]], *, y: str, x: str, x_title: str, color: str | None = None,
         sort: list[str] | None = None, height_per_bar: int = 22, first: str | list[str] | None = None,
         counts: bool = True) -> dict[str, Any]:
    """A horizontal bar chart (stacked by ``color`` when given, its parts in the order ``first`` names,
    then the rest sorted), one band per distinct ``y``; ``counts``: whole-number ticks."""
    bands = len({v[y] for v in values}) or 1
    axis = {"tickMinStep": 1, "format": "d"} if counts else {}
    enc: dict[str, Any] = {
        "y": {"field": y, "type": "nominal", "sort": sort or "-x", "title": None},
        "x": {"field": x, "type": "quantitative", "title": x_title, "stack": "zero", "axis": axis},
        "tooltip": [{"field": y}, {"field": x}] + ([{"field": color}] if color else []),
    }
    if color:
        lead = [first] if isinstance(first, str) else list(first or [])
        domain = list(dict.fromkeys(lead + sorted({v[color] for v in values})))
        enc["color"] = {"field": color, "type": "nominal", "title": None, "scale": {**_PALETTE, "domain": domain},
                        "legend": {"orient": "bottom", "columns": 3}}
        enc["order"] = {"field": "_order", "type": "quantitative"}
        for v in values:
            v["_order"] = domain.index(v[color])
    return {"width": WIDTH, "height": max(40, bands * height_per_bar), "data": {"values": values},
            "mark": {"type": "bar"}, "encoding": enc}


def funnel(stages: list[dict[str, Any]], fmt: Format = "svg") -> str | bytes:
    """Rows out of each stage (``kept``) and the rows it dropped, stacked by reason; stages in order.
    ``stages``: [{name, rows_out, dropped: {reason: n}}]."""
    values = []
    for s in stages:
        values.append({"stage": s["name"], "part": KEPT, "rows": int(s.get("rows_out") or 0)})
        values += [{"stage": s["name"], "part": f"dropped: {r}", "rows": int(n)} for r, n in s["dropped"].items()]
    return render(_bar(values, y="stage", x="rows", x_title="rows", color="part", first=KEPT,
                       sort=[s["name"] for s in stages]), fmt, key="funnel")


def cost_by_stage(groups: list[dict[str, Any]], fmt: Format = "svg") -> str | bytes:
    """Dollars per ledger stage label, in the order given. ``groups``: [{stage, usd}]."""
    values = [{"stage": g["stage"], "usd": float(g["usd"])} for g in groups]
    return render(_bar(values, y="stage", x="usd", x_title="USD", sort=[g["stage"] for g in groups], counts=False),
                  fmt, key="cost-stage")


def cost_by_model(groups: list[dict[str, Any]], fmt: Format = "svg") -> str | bytes:
    """Dollars per model. ``groups``: [{model, usd}]."""
    values = [{"model": g["model"], "usd": float(g["usd"])} for g in groups]
    return render(_bar(values, y="model", x="usd", x_title="USD", counts=False), fmt, key="cost-model")


def cost_histogram(bins: list[dict[str, Any]], fmt: Format = "svg") -> str | bytes:
    """Kept examples per cost bin. ``bins``: [{lo, hi, count}] (USD, pre-binned)."""
    spec = {"width": WIDTH, "height": 180, "data": {"values": bins}, "mark": {"type": "bar"},
            "encoding": {"x": {"field": "lo", "type": "quantitative", "bin": {"binned": True},
                               "title": "USD per kept example", "axis": {"format": ".2~e"}},
                         "x2": {"field": "hi"},
                         "y": {"field": "count", "type": "quantitative", "title": "examples"},
                         "tooltip": [{"field": "lo"}, {"field": "hi"}, {"field": "count"}]}}
    return render(spec, fmt, key="cost-hist")


def variant_sizes(variants: dict[str, int], fmt: Format = "svg") -> str | bytes:
    """Records per variant (training set)."""
    values = [{"variant": k, "records": int(n)} for k, n in variants.items()]
    return render(_bar(values, y="variant", x="records", x_title="records"), fmt, key="variants")


def counts(title: str, items: dict[str, int | float], key: str, fmt: Format = "svg") -> str | bytes:
    """A method panel's counts, one bar each in the order given (e.g. PERsD's attempts and refinements)."""
    values = [{"step": k, "n": v} for k, v in items.items()]
    return render(_bar(values, y="step", x="n", x_title=title, sort=list(items)), fmt, key=key)


def grouped(values: list[dict[str, Any]], *, group: str, part: str, n: str, title: str, key: str,
            parts: list[str] | None = None, fmt: Format = "svg") -> str | bytes:
    """Stacked counts per group, parts in the order ``parts`` gives (SODA's tiers or judge scores per
    cycle)."""
    sort = list(dict.fromkeys(v[group] for v in values))
    return render(_bar(values, y=group, x=n, x_title=title, color=part, sort=sort, first=parts), fmt, key=key)


def pass_at_k(points: list[dict[str, Any]], fmt: Format = "svg") -> str | bytes:
    """pass@k of eval runs: one row of panels per benchmark, a bar per run label (corpus version,
    variant and student), coloured by k. ``points``: [{benchmark, run, k, value}]."""
    runs = len({p["run"] for p in points}) or 1
    spec = {"data": {"values": points}, "mark": {"type": "bar"},
            "encoding": {"row": {"field": "benchmark", "type": "nominal", "title": None},
                         "y": {"field": "run", "type": "nominal", "title": None},
                         "yOffset": {"field": "k", "type": "nominal"},
                         "x": {"field": "value", "type": "quantitative", "title": "pass@k",
                               "scale": {"domain": [0, 1]}},
                         "color": {"field": "k", "type": "nominal", "title": None, "scale": _PALETTE,
                                   "legend": {"orient": "bottom"}},
                         "tooltip": [{"field": "run"}, {"field": "k"}, {"field": "value"}]},
            "width": WIDTH - 120, "height": {"step": 10 if runs > 1 else 14}}
    return render(spec, fmt, key="pass-at-k")
