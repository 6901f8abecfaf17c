"""``distillc report CORPUS --html``: a PERsD corpus (scripted student and teacher on loopback servers)
with an eval run of a model trained on it, reported to one HTML file and opened in headless chromium;
escaping of task text, the diff against the previous version, bad inputs, and the terminal table."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
import yaml

from compiler.store.db import Store
from compiler.store.evalruns import TRAIN_RECORD
from compiler.store.versions import resolve
from evals.problems import humaneval_path
from tests.browser import chart_sizes
from tests.compiler.conftest import STARTER, run_cli, starter_tasks
from tests.loopback import LoopbackServer
from tests.persd.conftest import LIMIT, PERSD_STAGES, models, student, tasks, teacher  # noqa: F401 (fixtures)

CHARTS = ["chart-funnel", "chart-cost-stage", "chart-cost-model", "chart-cost-hist", "chart-variants",
          "chart-persd", "chart-pass-at-k"]
NETWORK = re.compile(r"""(?:src|href|action|data)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


def humaneval_samples(path: Path, correct: int) -> Path:
    with gzip.open(humaneval_path(), "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh][:4]
    path.write_text("".join(json.dumps({"task_id": r["task_id"], "completion": r["canonical_solution"]
                                        if i < correct else "    return None\n"}) + "\n" for i, r in enumerate(rows)))
    return path


@pytest.fixture(scope="module")
def persd_store(tmp_path_factory, student, teacher, monkeypatch_module):  # noqa: F811
    """A compiled PERsD corpus ``persd-report`` and one eval run of a model trained on its version 1."""
    tmp = tmp_path_factory.mktemp("report-html")
    recipe = tmp / "persd-report.yaml"
    source = {"kind": "jsonl", "path": str(STARTER), "limit": LIMIT, "name": "starter"}
    recipe.write_text(yaml.safe_dump({"name": "persd-report", "sources": [source], **models(student.url, teacher.url),
                                      "stages": PERSD_STAGES}, sort_keys=False))
    store = tmp / "store.duckdb"
    r = run_cli("compile", recipe, "--store", store, "--json")
    assert r.code == 0, r.err
    with Store.open_readonly(str(store)) as st:
        fp = resolve(st, "persd-report").fingerprint
    model = tmp / "trained"
    model.mkdir()
    (model / TRAIN_RECORD).write_text(json.dumps({"corpus": "persd-report", "version": 1, "fingerprint": fp,
                                                  "variant": "PERsD-refine", "student": "scripted-student"}))
    r = run_cli("eval", model, "--samples", humaneval_samples(tmp / "s.jsonl", 3), "--store", store)
    assert r.code == 0, r.err
    return store


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    mp.setenv("OPENAI_API_KEY", "test-key")
    mp.setenv("DISTILLC_PROGRESS", "0")
    yield mp
    mp.undo()


def test_report_page_draws_every_chart_offline(persd_store, tmp_path, browser):
    out = tmp_path / "out.html"
    r = run_cli("report", "persd-report", "--html", out, "--store", persd_store)
    assert r.code == 0, r.err
    assert "persd-report@1" in r.out and out.is_file()
    page = out.read_text(encoding="utf-8")
    assert not NETWORK.search(page), NETWORK.search(page)
    assert "<link" not in page and "@import" not in page and "url(http" not in page
    browser.open(out.as_uri())
    assert browser.errors() == []
    charts = chart_sizes(browser)
    assert sorted(c["id"] for c in charts) == sorted(CHARTS)
    for c in charts:
        assert c["tag"] == "svg" and c["width"] > 0 and c["height"] > 0 and c["shapes"] > 0, c
    shown = run_cli("show", "persd-report", "--store", persd_store, "--json").json()
    text = browser.text()
    for s in shown["stages"]:                               # the funnel's numbers, stage by stage
        row = next(line for line in text.splitlines() if line.startswith(s["name"] + "\t"))
        assert f"\t{s['rows_in']}\t{s['rows_out']}\t{sum(s['dropped'].values())}\t" in row, row
        for reason, n in s["dropped"].items():
            assert f"{reason}: {n}" in row
    p = shown["persd"]
    assert f"{p['tasks']}\t{p['attempts']}\t{p['attempts_passed']}\t{p['attempts_failed']}\t" \
           f"{p['refinements_requested']}\t{p['refinements_parsed']}\t{p['refinements_passed']}" in text
    assert "The 10 most expensive examples" in text and "student_attempt" in text and "teacher_refine" in text
    assert "persd-report@1:PERsD-refine" in text and "0.7500" in text          # the linked eval run
    assert "is the first version of this corpus" in text
    assert browser.shoot("report_persd").stat().st_size > 10_000
    browser.js("document.querySelector('#funnel th').click()")                  # sorting raises nothing
    assert browser.errors() == []


def test_report_json_and_terminal_table_with_a_ref(persd_store, tmp_path):
    out = tmp_path / "r.html"
    r = run_cli("report", "persd-report@1", "--html", out, "--json", "--store", persd_store)
    assert r.code == 0 and r.json() == {"ref": "persd-report@1", "html": str(out), "bytes": out.stat().st_size}
    everything = run_cli("report", "--store", persd_store)
    mine = run_cli("report", "persd-report", "--store", persd_store)
    assert everything.code == mine.code == 0 and mine.out == everything.out      # its only run is of this corpus
    other = run_cli("report", "other-corpus", "--store", persd_store)
    assert other.code == 0 and "no eval runs of models trained on other-corpus yet" in other.out
    assert run_cli("report", "persd-report@2", "--store", persd_store, "--json").json()["runs"] == []
    assert len(run_cli("report", "persd-report@1", "--store", persd_store, "--json").json()["runs"]) == 1


@pytest.mark.parametrize("argv, message", [
    (["nope", "--html", "{tmp}/x.html"], "unknown corpus 'nope'"),
    (["persd-report@7", "--html", "{tmp}/x.html"], "persd-report has no version 7"),
    (["persd-report", "--html", "{tmp}/missing/x.html"], "directory {tmp}/missing does not exist"),
    (["--html", "{tmp}/x.html"], "report --html needs a corpus"),
])
def test_bad_inputs_fail_in_one_line_and_write_nothing(persd_store, tmp_path, argv, message):
    r = run_cli("report", *[a.format(tmp=tmp_path) for a in argv], "--store", persd_store)
    assert r.code == 1 and r.out == ""
    assert len(r.err.strip().splitlines()) == 1 and message.format(tmp=tmp_path) in r.err, r.err
    assert list(tmp_path.rglob("*")) == []


HOSTILE = "<script>alert(1)</script>"


def test_task_text_is_escaped_and_the_diff_is_summarised(tmp_path, browser):
    tasks = starter_tasks(3)
    tasks[0] = {**tasks[0], "task_id": f"evil/{HOSTILE}", "instruction": f"{HOSTILE} " + tasks[0]["instruction"]}
    path = tmp_path / "tasks.jsonl"
    path.write_text("".join(json.dumps(t) + "\n" for t in tasks))
    refs = {t["instruction"]: t["reference_solution"] for t in tasks}

    def answer(body):
        text = body["messages"][-1]["content"]
        return f"```python\n{next((r for i, r in refs.items() if text.startswith(i)), 'pass')}\n```"
    store = tmp_path / "s.duckdb"
    with LoopbackServer(answer=answer) as server:
        for n in (1, 2):                                   # version 2 answers each task twice
            recipe = tmp_path / f"evil{n}.yaml"
            recipe.write_text(yaml.safe_dump({
                "name": "evil", "description": f"Hostile {HOSTILE} description", "sources": [
                    {"kind": "jsonl", "path": str(path)}],
                "teacher": {"backend": "openai", "model": "gpt-4o-mini", "base_url": server.url},
                "stages": [{"uses": "teacher_answer", "with": {"n": n, "temperature": 0.5}}, {"uses": "extract_code"},
                           {"uses": "execute"}, {"uses": "format"}]}))
            assert run_cli("compile", recipe, "--store", store, "--json").code == 0
    out = tmp_path / "evil.html"
    r = run_cli("report", "evil", "--html", out, "--store", store)
    assert r.code == 0, r.err
    page = out.read_text()
    assert HOSTILE not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    browser.open(out.as_uri())
    assert browser.errors() == []
    text = browser.text()
    assert HOSTILE in text                                  # shown as text, never run
    diff = run_cli("diff", "evil@1", "evil@2", "--store", store, "--json").json()
    assert f"evil@1 → evil@2: {diff['added']} added, {diff['removed']} removed, {diff['changed']} changed" in text
    assert diff["added"] > 0


def test_the_dearest_examples_are_explained_to_the_cent(persd_store):
    from compiler.report_html import report_data

    with Store.open_readonly(str(persd_store)) as st:
        data = report_data(st, resolve(st, "persd-report"))
    top = data["examples"]["top"]
    assert len(top) == 10 and [e["usd"] for e in top] == sorted((e["usd"] for e in top), reverse=True)
    assert top[0]["usd"] == data["examples"]["stats"]["max_usd"] > 0
    for e in top:
        for via, total in (("ancestors", e["ancestors_usd"]), ("discarded siblings", e["siblings_usd"])):
            assert sum(g["usd"] for g in e["lineage"] if g["via"] == via) == pytest.approx(total, rel=1e-9, abs=1e-15)
    assert any(g["via"] == "discarded siblings" and g["stage"] == "student_attempt" for e in top for g in e["lineage"])
    assert sum(b["count"] for b in data["examples"]["histogram"]) == data["rows"]


def test_sql_costs_equal_the_walk_on_a_persd_corpus(persd_store):
    from tests.compiler.test_cost import _same_costs

    fast, _ = _same_costs(persd_store, "persd-report")
    assert len({e["variant"] for e in fast["examples"]}) > 2 and any(e["siblings_usd"] for e in fast["examples"])


# Funnels shaped as the AMR-Evol, SODA and AKD packages compute them for `distillc show`.
OTHER_FUNNELS = {
    "amr_evol": {"instructions": {"seed": 4, "depth": 3}, "direct_answers": 7,
                 "decomposition": {"answers": 7, "specs": 15, "specs_per_answer": 2.14, "unparsable_specs": 1, "no_specs": 0},
                 "retrieval": {"rows": 7, "hit_rate": 1.0, "modules_per_row": 3.0, "best_score_mean": 0.8123, "horizon": 12},
                 "evolved_answers": 6, "self_test": {"labelled": 6, "passed": 5}, "repaired": None,
                 "database": {"before": 2, "seeded": 10, "at_retrieval": 12, "grown": 4, "after": 16},
                 "cost": {"evolve_response": {"calls": 7, "usd": 0.0012}}},
    "soda": {"cycles": [{"cycle": k, "questions": 8, "questions_kept": 6, "questions_dropped": {"judge_unparsed": 1},
                         "pairs_kept": 5, "pairs_dropped": {"no_fault": 1},
                         "judge_scores": {str(b): (b + k) % 3 for b in range(7)}, "judge_unparsed": 1,
                         "tiers": {"easy": 2, "medium": 3, "hard": 1}, "new_questions": {"easy": 1, "medium": 2, "hard": 3},
                         "new_questions_dropped": {}, "cost": {}, "usd": 0.002 * k} for k in (1, 2)],
             "kept": {"SODA": 10}},
    "akd": {"tasks": 9, "answers": 8, "failed": 1, "with_topk": 8, "dropped": {"failed_tests": 2}, "kept": {"AKD": 6}},
}


def test_every_method_panel_draws(persd_store, tmp_path, browser):
    from compiler.report_html import render_html, report_data

    with Store.open_readonly(str(persd_store)) as st:
        data = report_data(st, resolve(st, "persd-report"))
    data["methods"].update(OTHER_FUNNELS)
    out = tmp_path / "all.html"
    out.write_text(render_html(data), encoding="utf-8")
    browser.open(out.as_uri())
    assert browser.errors() == []
    drawn = {c["id"] for c in chart_sizes(browser) if c["width"] > 0 and c["height"] > 0 and c["shapes"] > 0}
    assert {"chart-persd", "chart-amr-evol", "chart-soda-tiers", "chart-soda-judge", "chart-akd"} <= drawn
    text = browser.text()
    for title in ("PERsD", "AMR-Evol", "SODA", "AKD"):
        assert f"\n{title}\n" in text
    assert "before\tseeded\tat retrieval\tgrown\tafter\n2\t10\t12\t4\t16" in text      # module database growth
    assert "0.8123" in text and "failed_tests\t2" in text and "judge_unparsed: 1" in text


def test_a_failed_write_is_one_line_and_leaves_no_file(persd_store, tmp_path, monkeypatch):
    import errno
    import os

    import compiler.commands.report as report

    def full(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(report.os, "replace", full)
    r = run_cli("report", "persd-report", "--html", tmp_path / "x.html", "--store", persd_store)
    assert r.code == 1 and len(r.err.strip().splitlines()) == 1, r.err
    assert "x.html: cannot write the report (No space left on device)" in r.err
    assert list(tmp_path.iterdir()) == []                  # the temporary file is gone too


def test_a_corpus_that_cost_nothing(make_recipe, teacher_server, store, tmp_path, browser):
    recipe = make_recipe(text=f"""\
        name: free
        sources:
          - kind: jsonl
            path: {STARTER}
            limit: 3
        teacher:
          backend: openai
          model: free-model
          base_url: {teacher_server.url}
          prices: {{input: 0, output: 0}}
        stages:
          - uses: teacher_answer
          - uses: extract_code
          - uses: execute
          - uses: format
        """)
    assert run_cli("compile", recipe, "--store", store).code == 0
    out = tmp_path / "free.html"
    assert run_cli("report", "free", "--html", out, "--store", store).code == 0
    browser.open(out.as_uri())
    assert browser.errors() == []
    text = browser.text()
    assert "Every kept example cost the same: $0.00." in text and "No kept example cost anything" in text
    assert "chart-cost-hist" not in {c["id"] for c in chart_sizes(browser)}
