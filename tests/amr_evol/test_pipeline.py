"""AMR-Evol end to end on a scripted loopback teacher (the real openai client), the real default
embedder, the real sandbox and a real DuckDB store: retrieval of a planted module, the evolution
prompt with and without specs, database growth, lineage, cost attribution, a rerun that computes
nothing, and bad input refused with the store unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.store import outputs
from compiler.store.db import Store
from compiler.store.versions import resolve
from tests.amr_evol.scripted import PLANTED, Teacher, write_world
from tests.compiler.conftest import file_digest, run_cli
from tests.loopback import LoopbackServer

RECIPE = """\
name: {name}
sources:
  - kind: jsonl
    path: {tasks}
teacher:
  backend: openai
  model: gpt-4o-mini
  base_url: {url}
embedder:
  model: {embedder}
stages:
  - uses: self_instruct
    with: {{n: 3, few_shot: 1}}
  - uses: evol_instruct
    with: {{levels: 1}}
  - uses: teacher_answer
  - uses: extract_code
  - uses: modular_decompose
  - uses: retrieve_modules
    with: {{top_k: {top_k}, max_modules: 3}}
  - uses: evolve_response
    with: {{include_specs: {include_specs}}}
  - uses: grow_modules
  - uses: format
    with: {{style: messages, completion: answer, answer: evolved_answer, variant: AMR-Evol}}
"""


class World:
    def __init__(self, tmp: Path, server: LoopbackServer, teacher: Teacher):
        self.tmp, self.server, self.teacher = tmp, server, teacher
        self.tasks, self.library = write_world(tmp)
        self.store = tmp / "store.duckdb"

    def recipe(self, name: str = "amr-test", *, top_k: int = 1, include_specs: bool = True,
               embedder: str = "all-minilm-l6-v2") -> Path:
        path = self.tmp / f"{name}.yaml"
        path.write_text(RECIPE.format(name=name, tasks=self.tasks, url=self.server.url, top_k=top_k,
                                      include_specs=str(include_specs).lower(), embedder=embedder))
        return path

    def compile(self, recipe: Path) -> dict:
        r = run_cli("compile", recipe, "--store", self.store, "--json")
        assert r.code == 0, r.err
        return r.json()

    def output(self, ref: str, uses: str):
        with Store.open_readonly(str(self.store)) as store:
            v = resolve(store, ref)
            fp = next(s["fingerprint"] for s in v.stages if s["uses"] == uses)
            return outputs.load_output(store, fp)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The planted library imported, then the AMR-Evol recipe compiled once."""
    teacher = Teacher()
    with LoopbackServer(answer=teacher) as server:
        w = World(tmp_path_factory.mktemp("amr"), server, teacher)
        imported = run_cli("modules", "import", w.library, "--store", w.store, "--json")
        assert imported.code == 0 and imported.json()["added"] == len(PLANTED), imported.err
        w.first = w.compile(w.recipe())
        yield w


def test_retrieval_finds_the_planted_module(world):
    rows = world.output("amr-test", "retrieve_modules").to_dicts()
    assert rows and all(r["db_horizon"] == len(PLANTED) and r["n_queries"] == 2 for r in rows)
    for r in rows:
        hits = json.loads(r["retrieved"])
        by_query = {h["query"]: h for h in hits}
        assert by_query["count_vowels_in_word"]["name"] == "count_vowels"
        assert by_query["count_vowels_in_word"]["score"] > 0.8
        assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
        assert "return sum(ch in 'aeiouAEIOU' for ch in text)" in by_query["count_vowels_in_word"]["code"]


def test_decomposition_partial_and_garbage_are_rejections_with_reasons(world):
    shown = run_cli("show", "amr-test", "--store", world.store, "--json").json()
    md = next(s for s in shown["stages"] if s["uses"] == "modular_decompose")
    rows = world.output("amr-test", "modular_decompose")
    assert md["dropped"]["no_specs"] >= 1 and md["dropped"]["unparsable_spec"] == rows.height
    specs = json.loads(rows["specs"][0])
    assert [s["name"] for s in specs] == ["count_vowels_in_word", "split_words"]
    assert specs[0]["params"] == {"word": "str: the word."} and specs[0]["returns"].startswith("int")
    with Store.open_readonly(str(world.store)) as store:
        details = [d for (d,) in store.con.execute(
            "SELECT detail FROM rejections WHERE reason = 'unparsable_spec'").fetchall()]
    assert details and all(d.startswith("def broken(a: int, b -> int:: the signature does not parse") for d in details)


def test_evolution_prompt_carries_question_modules_and_specs(world):
    prompts = [b["messages"][-1]["content"] for b in world.teacher.requests_ending("Correct Solution:")]
    assert prompts and all("Decomposed Functions" in p and "def split_words(sentence: str) -> list[str]:" in p
                           and "def count_vowels(text: str) -> int:" in p and "Relevant Functions:" in p
                           for p in prompts)
    assert all(b["temperature"] == 0 for b in world.teacher.requests_ending("Correct Solution:"))
    system = world.teacher.requests_ending("Correct Solution:")[0]["messages"][0]["content"]
    assert "as if you had never seen the relevant functions" in system


def test_evolution_prompt_without_specs(world):
    before = len(world.teacher.requests_ending("Correct Solution:"))
    out = world.compile(world.recipe("amr-nospecs", include_specs=False))
    assert out["embeddings_computed"] == 0            # same specs and modules: all from the cache
    new = world.teacher.requests_ending("Correct Solution:")[before:]
    assert new and all("Decomposed Functions" not in b["messages"][-1]["content"]
                       and "def count_vowels(text: str) -> int:" in b["messages"][-1]["content"] for b in new)


def test_database_grows_only_with_verified_novel_modules(world):
    listed = run_cli("modules", "ls", "--origin", "evolved", "--store", world.store, "--json").json()
    assert [m["name"] for m in listed["modules"]] == ["title_case_words"]
    assert listed["modules"][0]["verified"] is True
    shown = run_cli("show", "amr-test", "--store", world.store, "--json").json()
    grow = next(s for s in shown["stages"] if s["uses"] == "grow_modules")
    assert set(grow["dropped"]) == {"module_not_novel", "module_not_isolated", "module_failed_tests",
                                    "module_too_few_tests"}
    db = shown["amr_evol"]["database"]
    assert (db["before"], db["at_retrieval"], db["grown"], db["after"]) == (len(PLANTED), len(PLANTED), 1, len(PLANTED) + 1)
    seen = run_cli("modules", "ls", "--version", "amr-test@1", "--store", world.store, "--json").json()
    assert seen["count"] == len(PLANTED)                  # what that version's retrieval could see
    module = run_cli("modules", "show", listed["modules"][0]["module_id"], "--store", world.store, "--json").json()
    assert module["added_by"] == ["amr-test@1"] and len(module["tests"]) == 3
    funnel = shown["amr_evol"]
    assert funnel["instructions"] == {"complex1": 3, "self_instruct": 3}
    assert funnel["retrieval"]["hit_rate"] == 1.0 and funnel["evolved_answers"] == funnel["retrieval"]["rows"]
    best = [json.loads(r)[0]["score"] for r in world.output("amr-test", "retrieve_modules")["retrieved"]]
    assert funnel["retrieval"]["best_score_mean"] == pytest.approx(sum(best) / len(best), abs=1e-4)
    assert 0.8 < funnel["retrieval"]["best_score_mean"] <= 1.0       # the planted module is a close match
    text = run_cli("show", "amr-test", "--store", world.store).out
    assert "amr-evol: module database before=6 (+0 seeded) at retrieval=6  after=7 (+1 grown)" in text


def test_lineage_from_seed_to_evolved_answer(world):
    steps = ["format", "evolve_response", "retrieve_modules", "modular_decompose", "teacher_answer",
             "evol_instruct", "self_instruct"]
    frames = {s: world.output("amr-test", s) for s in steps}
    record = frames["format"].filter(frames["format"]["task_id"].str.starts_with("evol-")).to_dicts()[0]
    chain, row = [], record
    for stage in steps[1:]:
        parent = row["parent_ids"][0]
        found = frames[stage].filter(frames[stage]["row_id"] == parent).to_dicts()
        assert found, f"{stage} has no row {parent}"
        row = found[0]
        chain.append(row)
    evolved, retrieved, decomposed, answer, evol, si = chain
    assert evolved["evolved_answer"] == record["messages"][-1]["content"]
    assert json.loads(retrieved["retrieved"]) and json.loads(decomposed["specs"])
    assert answer["answer"].startswith("```python") and evol["level"] == "complex1"
    assert si["level"] == "self_instruct" and evol["parent_task_id"] == si["task_id"]
    seeds = {r["row_id"]: r for r in world.output("amr-test", "sources").to_dicts()}
    seed = seeds[si["parent_ids"][0]]                          # the seed task it was written from
    assert seed["instruction"].lower() in si["instruction"] and seed["instruction"].lower() in evol["instruction"]


def test_cost_by_example_attributes_every_call_of_the_chain(world):
    from compiler.cost import load_lineage

    r = run_cli("cost", "amr-test", "--by", "example", "--store", world.store, "--json")
    assert r.code == 0, r.err
    out = r.json()
    assert out["usd"] > 0 and abs(sum(e["usd"] for e in out["examples"]) - out["usd"]) < 1e-9
    with Store.open_readonly(str(world.store)) as store:
        v = resolve(store, "amr-test")
        lineage = load_lineage(store, v)
        calls = store.con.execute("SELECT stage, served_rows, usd FROM llm_calls WHERE list_contains(?, stage_fp)",
                                  [v.fingerprints]).fetchall()
    example = next(e for e in out["examples"] if e["task_id"].startswith("evol-"))
    ancestry = lineage.ancestors(example["row_id"])
    paid = {stage for stage, served, usd in calls if usd > 0 and set(json.loads(served)) & ancestry}
    assert {"self_instruct", "evol_instruct:level1", "teacher_answer", "modular_decompose", "evolve_response"} <= paid
    chain = sum(usd for _, served, usd in calls if set(json.loads(served)) & ancestry)
    assert example["ancestors_usd"] > 0 and example["usd"] >= example["ancestors_usd"]
    assert chain >= example["ancestors_usd"] - 1e-12          # its share of its own chain's calls


def test_rerun_makes_no_llm_call_and_no_embedding(world):
    before = world.server.tally.answered
    again = world.compile(world.recipe())
    assert (again["version"], again["stages_run"], again["llm_calls"], again["embeddings_computed"]) == (1, 0, 0, 0)
    assert world.server.tally.answered == before


def test_a_changed_upstream_param_embeds_only_new_texts(world):
    out = world.compile(world.recipe("amr-top2", top_k=2))
    assert out["llm_calls"] > 0 and out["embeddings_computed"] == 0      # every spec and module was embedded before


@pytest.mark.parametrize("kind", ["embedder", "top_k"])
def test_bad_input_is_one_line_and_changes_nothing(world, kind, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    recipe = world.recipe("amr-bad", embedder="acme/no-such-embedder") if kind == "embedder" \
        else world.recipe("amr-bad", top_k=len(PLANTED) + 5)
    before = file_digest(world.store)
    r = run_cli("compile", recipe, "--store", world.store)
    assert r.code == 1 and r.err.count("\n") == 1, r.err
    if kind == "embedder":
        assert "amr-bad.yaml:10 embedder.model: unknown embedder 'acme/no-such-embedder'" in r.err
    else:
        assert (f"stage 'retrieve_modules': the module database holds {len(PLANTED) + 1} verified modules, "
                f"fewer than top_k={len(PLANTED) + 5}") in r.err
    assert file_digest(world.store) == before


def test_an_empty_store_with_retrieval_but_no_modules_is_refused_and_not_created(world, tmp_path):
    store = tmp_path / "fresh.duckdb"
    r = run_cli("compile", world.recipe("amr-empty"), "--store", store)
    assert r.code == 1 and "the module database holds 0 verified modules" in r.err and not store.exists()


def test_per_example_cost_in_sql_equals_the_lineage_walk(world):
    from tests.compiler.test_cost import _same_costs

    fast, _ = _same_costs(world.store, "amr-test")
    assert any(e["task_id"].startswith("evol-") for e in fast["examples"])
