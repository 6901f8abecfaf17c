"""``distillc report CORPUS[@V] --html OUT.html``: one self-contained page auditing a corpus version —
its funnel with drops by reason, what it cost per stage, per model and per kept example (with the ten
dearest examples and where their cost came from), its variants, the panel of each method it was built
with, the eval runs of models trained on the corpus, and what changed since the previous version.

Two steps, kept apart: :func:`report_data` reads the store and returns aggregates only (a few
hundred numbers and labels whatever the corpus size: a histogram, never the rows), and
:func:`render_html` turns them into the page. Charts are inline SVG drawn offline
(:mod:`compiler.charts`); every number a chart shows is in a table under it. The page loads nothing:
no script, style sheet, font or image from anywhere. Every string read from the store or the recipe
is HTML-escaped (a task's text may hold markup). Method panels are in :mod:`compiler.report_panels`.
"""

from __future__ import annotations

import time
from typing import Any

from compiler.commands.common import money
from compiler.report_panels import Html, chart_block, esc, fine_usd, method_panels, page, section, table
from compiler.store.db import Store
from compiler.store.versions import Version

TOP = 10          # dearest examples explained
BINS = 30         # histogram bins of the cost per kept example
SNIPPET = 160     # characters of a task's instruction shown beside an expensive example


def report_data(store: Store, version: Version, *, benchmark: str | None = None) -> dict[str, Any]:
    """Every aggregate the page shows; ``timings`` holds the seconds each part took to gather."""
    from compiler.inspect import funnel, variant_counts
    from compiler.methods import funnels

    timings: dict[str, float] = {}

    def timed(name: str, fn, *args):
        t0 = time.perf_counter()
        value = fn(*args)
        timings[name] = time.perf_counter() - t0
        return value

    return {
        "corpus": version.corpus, "version": version.version, "ref": version.ref,
        "fingerprint": version.fingerprint, "rows": version.rows, "created_at": str(version.created_at)[:19],
        "description": version.recipe.get("description") or "",
        "stages": timed("funnel", funnel, store, version),
        "cost": timed("cost", _cost, store, version),
        "examples": timed("per_example", _examples, store, version),
        "variants": timed("variants", variant_counts, store, version),
        "methods": timed("methods", funnels, store, version),
        "evals": timed("evals", _evals, store, version, benchmark),
        "diff": timed("diff", _diff, store, version),
        "timings": timings,
    }


def _cost(store: Store, version: Version) -> dict[str, Any]:
    from compiler.cost import version_cost
    from compiler.llm import ledger

    out = version_cost(store, version, "stage")
    models = ledger.totals(store.con, by="model", stage_fps=version.fingerprints)
    interrupted = out["interrupted"]
    return {"usd": out["usd"], "total": out["total"], "reused_usd": out["reused_usd"], "by_stage": out["groups"],
            "by_model": models, "interrupted": {k: v for k, v in interrupted.items() if k != "rows"}}


def histogram(values: list[float], bins: int = BINS) -> list[dict[str, Any]]:
    """Equal-width bins from the least to the most (one bin when all values are equal)."""
    if not values:
        return []
    lo, hi = min(values), max(values)
    if hi - lo <= 1e-15 * max(abs(hi), 1e-300):
        return [{"lo": lo, "hi": hi if hi > lo else lo * 1.0001 + 1e-12, "count": len(values)}]
    width = (hi - lo) / bins
    counts = [0] * bins
    for v in values:
        counts[min(int((v - lo) / width), bins - 1)] += 1
    return [{"lo": lo + i * width, "hi": lo + (i + 1) * width, "count": n} for i, n in enumerate(counts)]


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _examples(store: Store, version: Version) -> dict[str, Any]:
    from compiler.cost import _by_variant, per_example

    found = per_example(store, version, explain=TOP)
    examples = found["examples"]
    usd = sorted(e["usd"] for e in examples)
    stats = {"examples": len(usd), "total_usd": sum(usd)}
    if usd:
        stats.update(mean_usd=sum(usd) / len(usd), min_usd=usd[0], median_usd=_quantile(usd, 0.5),
                     p90_usd=_quantile(usd, 0.9), max_usd=usd[-1])
    top = [e for e in examples if "lineage" in e]
    top.sort(key=lambda e: (-e["usd"], e["row_id"]))
    instructions = _instructions(store, version, [e["task_id"] for e in top if e["task_id"]])
    for e in top:
        e["instruction"] = instructions.get(e["task_id"], "")
    return {"stats": stats, "histogram": histogram(usd), "by_variant": _by_variant(examples), "top": top,
            "unattributed_usd": found["unattributed_usd"]}


def _instructions(store: Store, version: Version, task_ids: list[str]) -> dict[str, str]:
    """The first characters of these tasks' instructions, from the first stage's output."""
    from compiler.store import outputs

    if not task_ids or not version.stages:
        return {}
    fp = version.stages[0]["fingerprint"]
    if not {"task_id", "instruction"} <= set(outputs.output_columns(store, fp)):
        return {}
    rows = store.con.execute(
        f"SELECT task_id, any_value(left(instruction, {SNIPPET + 1})) FROM {outputs.table_name(fp)} "
        "WHERE list_contains(?, task_id) GROUP BY task_id", [task_ids]).fetchall()
    return {t: (s if len(s) <= SNIPPET else s[:SNIPPET] + "…") for t, s in rows if s is not None}


def _evals(store: Store, version: Version, benchmark: str | None) -> list[dict[str, Any]]:
    """Eval runs of models trained on any version of this corpus, with Δpass@1 against the base
    student's comparable run (as in the terminal table of ``distillc report``)."""
    from compiler.commands.report import base_runs, delta, sort_key
    from compiler.store.evalruns import list_runs

    runs = list_runs(store, benchmark=benchmark)
    bases = base_runs(runs)
    mine = sorted((r for r in runs if r.corpus == version.corpus), key=sort_key)
    return [{"benchmark": r.benchmark, "corpus": r.corpus_ref, "version": r.version, "variant": r.variant,
             "student": r.student, "model": r.model, "n": r.n, "temperature": r.temperature,
             "problems": r.problems, "pass_at_k": r.pass_at_k, "delta_pass@1": delta(r, bases),
             "linked": r.linked, "run_id": r.run_id, "created_at": str(r.created_at)[:16]} for r in mine]


def _diff(store: Store, version: Version) -> dict[str, Any] | None:
    """Rows added, removed and changed since the previous version of the corpus (None for a first)."""
    from compiler.commands.diff import compare
    from compiler.store.versions import list_versions

    earlier = [v for v in list_versions(store, version.corpus) if v.version < version.version]
    if not earlier:
        return None
    return compare(store, earlier[-1], version, limit=10)


# --- rendering -------------------------------------------------------------------------------------


def render_html(data: dict[str, Any]) -> str:
    """The page: a header, then one section per part of ``data``."""
    from compiler import charts

    ex = data["examples"]
    parts = [
        _summary(data),
        section("funnel", "Funnel per stage", chart_block("chart-funnel", charts.funnel(data["stages"])),
                _funnel_table(data["stages"])),
        section("cost", "Cost", _cost_totals(data["cost"]),
                chart_block("chart-cost-stage", charts.cost_by_stage(data["cost"]["by_stage"])),
                _cost_table(data["cost"]["by_stage"], "stage"),
                chart_block("chart-cost-model", charts.cost_by_model(data["cost"]["by_model"])),
                _cost_table(data["cost"]["by_model"], "model")),
        section("per-example", "Cost per kept example",
                _histogram(ex), _example_stats(ex), _top_examples(ex["top"])),
        section("variants", "Variants",
                chart_block("chart-variants", charts.variant_sizes(data["variants"])) if data["variants"] else
                Html(f"<p>One training set of {data['rows']} records (no variants).</p>"),
                table(["variant", "records"], [[k, n] for k, n in data["variants"].items()])),
        *method_panels(data["methods"]),
        _evals_section(data["evals"]),
        _diff_section(data["diff"], data["ref"]),
    ]
    return page(f"{data['ref']}: distillc report", parts)


def _histogram(ex: dict[str, Any]) -> Html:
    from compiler import charts

    bins = ex["histogram"]
    if not bins:
        return Html("<p>No kept examples.</p>")
    if len(bins) == 1:
        return Html(f"<p>Every kept example cost the same: {esc(fine_usd(bins[0]['lo']))}.</p>")
    return chart_block("chart-cost-hist", charts.cost_histogram(bins))


def _summary(data: dict[str, Any]) -> Html:
    cost = data["cost"]
    lines = [f"<h1>{esc(data['ref'])}</h1>"]
    if data["description"]:
        lines.append(f"<p>{esc(data['description'])}</p>")
    lines.append(
        f"<p class='meta'>fingerprint <code>{esc(data['fingerprint'])}</code> · created {esc(data['created_at'])} UTC · "
        f"<b>{data['rows']}</b> records · <b>{esc(money(cost['usd']))}</b> over {cost['total']['calls']} LLM calls · "
        f"{esc(fine_usd(data['examples']['stats'].get('mean_usd')))} per kept example</p>")
    return Html("\n".join(lines))


def _funnel_table(stages: list[dict[str, Any]]) -> Html:
    return table(["stage", "uses", "rows in", "rows out", "dropped", "by reason", "LLM calls", "cache hits", "usd"],
                 [[s["name"], s["uses"], s["rows_in"], s["rows_out"], sum(s["dropped"].values()),
                   ", ".join(f"{k}: {n}" for k, n in sorted(s["dropped"].items(), key=lambda kv: -kv[1])) or "—",
                   s["llm_calls"], s["cache_hits"], money(s["usd"])] for s in stages])


def _cost_totals(cost: dict[str, Any]) -> Html:
    t, i = cost["total"], cost["interrupted"]
    text = (f"<p>Total <b>{esc(money(cost['usd']))}</b>: {t['calls']} calls ({t['cache_hits']} cache hits, "
            f"{t['failed']} failed), {t['prompt_tokens']} prompt and {t['completion_tokens']} completion tokens; "
            f"cached answers reused worth {esc(money(cost['reused_usd']))}.")
    if i["calls"]:
        text += (f" {i['calls']} interrupted calls (sent, no answer recorded) are not in the total: at most "
                 f"{esc(money(i['max_usd']))}.")
    return Html(text + "</p>")


def _cost_table(groups: list[dict[str, Any]], key: str) -> Html:
    return table([key, *(["backend"] if key == "model" else []), "calls", "cache hits", "failed",
                  "prompt tokens", "completion tokens", "usd"],
                 [[g[key], *([g["backend"]] if key == "model" else []), g["calls"], g["cache_hits"], g["failed"],
                   g["prompt_tokens"], g["completion_tokens"], money(g["usd"])] for g in groups])


def _example_stats(ex: dict[str, Any]) -> Html:
    s = ex["stats"]
    names = ("examples", "mean_usd", "min_usd", "median_usd", "p90_usd", "max_usd", "total_usd")
    row = [s.get(n) if n == "examples" else fine_usd(s.get(n)) for n in names]
    by_variant = table(["variant", "examples", "usd", "mean per example"],
                       [[k, g["examples"], fine_usd(g["usd"]), fine_usd(g["mean_usd"])]
                        for k, g in ex["by_variant"].items()])
    bins = table(["from", "to", "examples"], [[fine_usd(b["lo"]), fine_usd(b["hi"]), b["count"]]
                                              for b in ex["histogram"]], css="bins")
    return Html(str(table(["examples", "mean", "min", "median", "p90", "max", "total"], [row])) + str(by_variant)
                + f"<details><summary>histogram bins</summary>{bins}</details>")


def _top_examples(top: list[dict[str, Any]]) -> Html:
    if not top:
        return Html("")
    if not any(e["usd"] for e in top):
        return Html("<p>No kept example cost anything: every call was free (or answered from the cache).</p>")
    out = [f"<h3>The {len(top)} most expensive examples, and why</h3>",
           "<p>Each example pays its share of its ancestors' calls (split over the rows a call served, then over "
           "the row's kept descendants), its share of discarded siblings, and of the cost no example kept.</p>"]
    for e in top:
        out.append(f"<div class='example'><p><b>{esc(fine_usd(e['usd']))}</b> · <code>{esc(e['row_id'])}</code> · "
                   f"task <code>{esc(e['task_id'] or '—')}</code> · variant {esc(e['variant'] or '—')}</p>")
        if e.get("instruction"):
            out.append(f"<blockquote>{esc(e['instruction'])}</blockquote>")
        rows = [[g["via"], g["stage"], g["model"], g["calls"], g["rows"], fine_usd(g["usd"])] for g in e["lineage"]]
        if e["unattributed_usd"]:
            rows.append(["tasks that kept nothing", "", "", "", "", fine_usd(e["unattributed_usd"])])
        out.append(f"<p>ancestors {esc(fine_usd(e['ancestors_usd']))} · discarded siblings "
                   f"{esc(fine_usd(e['siblings_usd']))} · unattributed {esc(fine_usd(e['unattributed_usd']))}</p>")
        out.append((str(table(["paid for", "stage", "model", "calls", "rows", "usd"], rows)) if rows else "") + "</div>")
    return Html("\n".join(out))


def _evals_section(runs: list[dict[str, Any]]) -> Html:
    from compiler import charts

    if not runs:
        return section("evals", "Eval runs", Html("<p>No eval runs of models trained on this corpus "
                                                  "(<code>distillc eval MODEL --benchmark humaneval</code>).</p>"))
    ks = sorted({k for r in runs for k in r["pass_at_k"]}, key=lambda k: int(k.split("@")[1]))
    label = lambda r: f"{r['corpus']}{':' + r['variant'] if r['variant'] else ''} / {r['student'] or r['model']}"  # noqa: E731
    points = [{"benchmark": r["benchmark"], "run": f"{label(r)} ({r['run_id'][-6:]})", "k": k, "value": v}
              for r in runs for k, v in r["pass_at_k"].items()]
    rows = [[r["benchmark"], r["corpus"] + (f":{r['variant']}" if r["variant"] else "") + ("" if r["linked"] else " (?)"),
             r["student"] or "—", r["model"], r["n"], f"{r['temperature']:g}", r["problems"],
             *[_num(r["pass_at_k"].get(k)) for k in ks], _num(r["delta_pass@1"], signed=True), r["run_id"],
             r["created_at"]] for r in runs]
    return section("evals", "Eval runs", chart_block("chart-pass-at-k", charts.pass_at_k(points)),
                   table(["benchmark", "corpus", "student", "model", "n", "T", "problems", *ks, "Δpass@1", "run",
                          "created"], rows))


def _num(value: float | None, signed: bool = False) -> str:
    if value is None:
        return ""
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def _diff_section(diff: dict[str, Any] | None, ref: str) -> Html:
    if diff is None:
        return section("diff", "Changes since the previous version",
                       Html(f"<p>{esc(ref)} is the first version of this corpus.</p>"))
    head = Html(f"<p>{esc(diff['old'])} → {esc(diff['new'])}: <b>{diff['added']}</b> added, <b>{diff['removed']}</b> "
                f"removed, <b>{diff['changed']}</b> changed, {diff['unchanged']} unchanged.</p>")
    rows = [[kind, rid] for kind in ("added", "removed", "changed") for rid in diff["examples"][kind]]
    return section("diff", "Changes since the previous version", head,
                   table(["kind", "row id (first 10 of each kind)"], rows) if rows else Html(""))
