"""The building blocks of the HTML report's page (escaped text, tables, sections, the page shell) and
the panel of each method, drawn from the funnel dict the method computes for ``distillc show``.

Strings are escaped when they enter the page: :class:`Html` marks text that is already markup (a
chart's SVG, a table this module built); anything else goes through :func:`esc`. A method the report
knows no panel for still gets one: the lines ``distillc show`` prints for it.
"""

from __future__ import annotations

import html
from typing import Any, Callable

from compiler.commands.common import money


class Html(str):
    """Markup that is safe to put on the page as it is."""


def esc(value: Any) -> str:
    return value if isinstance(value, Html) else html.escape("" if value is None else str(value), quote=True)


def fine_usd(usd: float | None) -> str:
    """Dollars with enough digits for a single example's share (often a small fraction of a cent)."""
    if usd is None:
        return "—"
    return money(usd) if usd == 0 or usd >= 0.01 else f"${usd:.3g}" if usd >= 1e-4 else f"${usd:.2e}"


def table(headers: list[str], rows: list[list[Any]], css: str = "") -> Html:
    """A sortable table (click a header); numbers right-aligned."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_cell(c) for c in r) + "</tr>" for r in rows)
    return Html(f"<table class='sortable {css}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def _cell(value: Any) -> str:
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return f"<td class='num'>{esc(value)}</td>" if numeric else f"<td>{esc(value)}</td>"


def chart_block(chart_id: str, svg: str) -> Html:
    """An inline SVG chart in a figure the page and its tests find by id."""
    return Html(f"<figure class='chart' id='{esc(chart_id)}'>{svg}</figure>")


def section(sid: str, title: str, *parts: Any) -> Html:
    return Html(f"<section id='{esc(sid)}'><h2>{esc(title)}</h2>\n" + "\n".join(esc(p) for p in parts) + "</section>")


STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;max-width:1100px;margin:0 auto;padding:1em 2em}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
.meta{color:#555}code{background:#f4f4f4;padding:0 .25em;border-radius:3px;word-break:break-all}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:13px}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f6f6f6;cursor:pointer;user-select:none}th.asc:after{content:" ▲"}th.desc:after{content:" ▼"}
td.num{text-align:right;font-variant-numeric:tabular-nums}
figure.chart{margin:.6em 0}figure.chart svg{max-width:100%;height:auto}
.example{border-left:3px solid #c9d6e8;padding-left:.8em;margin:1em 0}
blockquote{margin:.3em 0;color:#555;font-style:italic;white-space:pre-wrap}
nav a{margin-right:1em}
"""

SORT_SCRIPT = """
document.querySelectorAll('table.sortable').forEach(function (t) {
  t.querySelectorAll('th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var body = t.tBodies[0], asc = !th.classList.contains('asc');
      t.querySelectorAll('th').forEach(function (h) { h.classList.remove('asc', 'desc'); });
      th.classList.add(asc ? 'asc' : 'desc');
      var key = function (tr) {
        var s = tr.cells[col] ? tr.cells[col].textContent : '', n = parseFloat(s.replace(/[$,%+]/g, ''));
        return isNaN(n) ? s : n;
      };
      Array.prototype.slice.call(body.rows).sort(function (a, b) {
        var x = key(a), y = key(b), c = (typeof x === typeof y) ? (x < y ? -1 : x > y ? 1 : 0)
          : (typeof x === 'number' ? -1 : 1);
        return asc ? c : -c;
      }).forEach(function (tr) { body.appendChild(tr); });
    });
  });
});
"""

NAV = (("funnel", "funnel"), ("cost", "cost"), ("per-example", "per example"), ("variants", "variants"),
       ("methods", "methods"), ("evals", "eval runs"), ("diff", "changes"))


def page(title: str, parts: list[Any]) -> str:
    nav = "".join(f"<a href='#{sid}'>{esc(name)}</a>" for sid, name in NAV)
    body = "\n".join(esc(p) for p in parts)
    return (f"<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{esc(title)}</title>"
            f"<style>{STYLE}</style></head>\n<body><nav>{nav}</nav>\n{body}\n"
            f"<footer class='meta'><p>Made by distillc report; self-contained, works offline.</p></footer>"
            f"<script>{SORT_SCRIPT}</script></body></html>\n")


# --- method panels ---------------------------------------------------------------------------------


def method_panels(funnels: dict[str, dict[str, Any]]) -> list[Html]:
    """One section holding a panel per method this version was built with."""
    from compiler.methods import all_methods

    panels = []
    for method in all_methods():
        if method.name in funnels:
            draw = PANELS.get(method.name, _lines_panel(method.render))
            panels.append(Html(f"<h3>{esc(method.title)}</h3>\n" + draw(funnels[method.name])))
    if not panels:
        panels = [Html("<p>Built with the shared stages only (no method panel).</p>")]
    return [section("methods", "Method", *panels)]


def _lines_panel(render: Callable[[dict[str, Any]], list[str]]) -> Callable[[dict[str, Any]], str]:
    return lambda f: f"<pre>{esc(chr(10).join(render(f)))}</pre>"


def _kept(f: dict[str, Any]) -> str:
    return table(["kept variant", "records"], [[k, n] for k, n in (f.get("kept") or {}).items()])


def persd_panel(f: dict[str, Any]) -> str:
    from compiler import charts

    steps = {"tasks": f["tasks"] or 0, "attempts": f["attempts"], "attempts passed": f["attempts_passed"],
             "attempts failed": f["attempts_failed"], "refinements requested": f["refinements_requested"],
             "refinements parsed": f["refinements_parsed"], "refinements passed": f["refinements_passed"]}
    parts = [chart_block("chart-persd", charts.counts("count", steps, "persd")),
             table(list(steps), [list(steps.values())])]
    if f.get("rounds"):
        keys = [k for k in f["rounds"][0] if k != "round"]
        parts.append(table(["round", *keys], [[r["round"], *[r[k] for k in keys]] for r in f["rounds"]]))
    return "\n".join(parts) + _kept(f)


def amr_evol_panel(f: dict[str, Any]) -> str:
    from compiler import charts

    parts = []
    if (m := f.get("database")) is not None:
        growth = {"before": m["before"], "seeded": m["seeded"], "at retrieval": m["at_retrieval"],
                  "grown": m["grown"], "after": m["after"]}
        parts += [chart_block("chart-amr-evol", charts.counts("modules", growth, "amr-evol")),
                  table(list(growth), [list(growth.values())])]
    parts.append(table(["instruction level", "instructions"], [[k, n] for k, n in f["instructions"].items()]))
    if (r := f.get("retrieval")) is not None:
        parts.append(table(["retrieval rows", "hit rate", "modules per row", "mean best cosine", "database horizon"],
                           [[r["rows"], r["hit_rate"], r["modules_per_row"], r["best_score_mean"], r["horizon"]]]))
    if (d := f.get("decomposition")) is not None:
        parts.append(table(list(d), [list(d.values())]))
    st = f.get("self_test") or {}
    parts.append(table(["direct answers", "evolved answers", "self-test labelled", "self-test passed", "repaired"],
                       [[f["direct_answers"], f["evolved_answers"], st.get("labelled"), st.get("passed"), f["repaired"]]]))
    parts.append(table(["stage", "calls", "usd"], [[k, v["calls"], money(v["usd"])] for k, v in f["cost"].items()]))
    return "\n".join(str(p) for p in parts)


def soda_panel(f: dict[str, Any]) -> str:
    from compiler import charts

    cycles = f["cycles"]
    tiers = [{"cycle": f"cycle {c['cycle']}", "tier": t, "questions": c["tiers"].get(t, 0)}
             for c in cycles for t in ("easy", "medium", "hard")]
    scores = [{"cycle": f"cycle {c['cycle']}", "score": s, "questions": n}
              for c in cycles for s, n in c["judge_scores"].items()]
    parts = []
    if cycles:
        parts += [chart_block("chart-soda-tiers", charts.grouped(tiers, group="cycle", part="tier", n="questions",
                                                                 title="questions by tier", key="soda-tiers",
                                                                 parts=["easy", "medium", "hard"])),
                  chart_block("chart-soda-judge", charts.grouped(scores, group="cycle", part="score", n="questions",
                                                                 title="judge score", key="soda-judge"))]
    reasons = lambda d: ", ".join(f"{k}: {n}" for k, n in sorted(d.items(), key=lambda kv: -kv[1])) or "—"  # noqa: E731
    parts.append(table(["cycle", "questions", "kept", "dropped", "pairs kept", "pairs dropped", "easy", "medium", "hard",
                        "judge scores 0..6", "unparsed", "new e/m/h", "usd"],
                       [[c["cycle"], c["questions"], c["questions_kept"], reasons(c["questions_dropped"]),
                         c["pairs_kept"], reasons(c["pairs_dropped"]), *[c["tiers"].get(t, 0) for t in ("easy", "medium", "hard")],
                         " ".join(str(n) for n in c["judge_scores"].values()), c["judge_unparsed"],
                         "/".join(str(c["new_questions"].get(t, 0)) for t in ("easy", "medium", "hard")), money(c["usd"])]
                        for c in cycles]))
    return "\n".join(str(p) for p in parts) + _kept(f)


def akd_panel(f: dict[str, Any]) -> str:
    from compiler import charts

    steps = {"tasks": f["tasks"] or 0, "teacher answers": f["answers"] or 0, "failed": f["failed"],
             "with top-k logprobs": f["with_topk"]}
    return "\n".join([chart_block("chart-akd", charts.counts("count", steps, "akd")),
                      table(list(steps), [list(steps.values())]),
                      table(["dropped for", "rows"], sorted(([k, n] for k, n in f["dropped"].items()), key=lambda r: -r[1]))]) \
        + _kept(f)


PANELS: dict[str, Callable[[dict[str, Any]], str]] = {
    "persd": persd_panel, "amr_evol": amr_evol_panel, "soda": soda_panel, "akd": akd_panel,
}
