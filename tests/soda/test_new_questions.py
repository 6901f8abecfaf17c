"""New questions are deduplicated against every question seen so far in the run: the source tasks,
the cycle's own questions, the questions accepted earlier in the stage and those accepted in earlier
cycles (a cycle-3 copy of a cycle-1 question is dropped although cycle 3's frame no longer holds it).
Exact repeats (case and spacing aside) are ``duplicate``, a word appended is ``near_duplicate``."""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

import numpy as np
import polars as pl
import pytest

from compiler.methods.soda.new_questions import SeenQuestions
from compiler.store import outputs
from compiler.store.db import Store
from compiler.store.versions import resolve
from tests.compiler.conftest import run_cli, starter_tasks
from tests.soda.conftest import stages
from tests.soda.scripted import ITEMS, NOUNS, VERBS, SodaScript, between, h

TASKS = 2
EVERY_TIER = {"easy": 3, "medium": 3, "hard": 3}


class RepeatingScript(SodaScript):
    """Prompts C and D, per question, in the order its requests arrive: a new question, then a repeat.
    From a starter task or a cycle-1 question (``fn_g1_``): the given question with a word appended
    (near duplicate) and a source task's instruction upper-cased (duplicate). From a cycle-2 question
    (``fn_g2_``): the first cycle-1 question upper-cased and the second with a word appended."""

    def __init__(self, tasks: list[dict[str, Any]]):
        super().__init__(tasks)
        self.instructions = [t["instruction"] for t in tasks]
        self.written: dict[int, list[str]] = {1: [], 2: [], 3: []}
        self.turn: Counter = Counter()
        self.guard = threading.Lock()

    def _new(self, text: str, body: dict[str, Any]) -> str:
        question = between(text, "#Given Instruction#:")
        task = self.task_of(question)
        given = task["instruction"] if task else question
        generation = 3 if "fn_g2_" in question else 2 if "fn_g1_" in question else 1
        with self.guard:
            turn = self.turn[question]
            self.turn[question] += 1
            if turn == 0:
                n = h(question, generation)
                made = (f"Write a Python function `fn_g{generation}_{n % 16 ** 6:06x}` that {VERBS[n % 10]} the "
                        f"{NOUNS[n // 10 % 10]} of a list of {ITEMS[n // 100 % 10]}s and returns the result.")
                self.written[generation].append(made)
                return f"#Created Instruction#: {made}"
            first, second = self.written[1][0], self.written[1][-1]
        if generation == 3:
            return f"#Created Instruction#: {first.upper() if turn == 1 else second + ' quickly'}"
        repeat = given + " quickly" if turn == 1 else "  ".join(self.instructions[-1].upper().split())
        return f"#Created Instruction#: {repeat}"


@pytest.fixture
def script() -> RepeatingScript:
    return RepeatingScript(starter_tasks(TASKS))


def test_seen_questions_exact_and_near_duplicates():
    seen = SeenQuestions(threshold=0.8, num_perm=128, shingle=3)
    seen.add_all(["Return the square of the integer n, for any integer the caller passes in.", None, ""])
    assert seen.match("return  the SQUARE of the integer n, for any integer the caller passes in.")[0] == "duplicate"
    near = seen.match("Return the square of the integer n, for any integer the caller passes in quickly.")
    assert near is not None and near[0] == "near_duplicate" and "Jaccard" in near[1]
    assert seen.match("Return the cube of a float x, rounded to two places, for the caller.") is None


def drops_by_cycle(store) -> dict[int, Counter]:
    with Store.open_readonly(str(store)) as st:
        fp = {s["name"]: s["fingerprint"] for s in resolve(st, "soda-test").stages}
        first = outputs.load_rejections(st, fp["new_questions"])
        later = outputs.load_rejections(st, fp["soda_cycles"])
    found = {1: Counter(first["reason"])}
    for reason, detail in later.select("reason", "detail").iter_rows():
        if " new_questions: " in detail:
            found.setdefault(int(detail.split()[1]), Counter())[reason] += 1
    return found


def test_new_questions_are_new_to_the_whole_run(soda_recipe, store, script):
    plan = stages(3)
    ask = next(s for s in plan if s["uses"] == "new_questions")
    # a word appended to the 8-token starter question: Jaccard 6/7 over 3-shingles, near at 0.7 for sure
    ask["with"] = {**ask["with"], "per_tier": EVERY_TIER, "near_threshold": 0.7}
    r = run_cli("compile", soda_recipe(plan, limit=TASKS), "--store", store, "--json")
    assert r.code == 0, r.err
    assert drops_by_cycle(store) == {k: Counter(duplicate=2, near_duplicate=2) for k in (1, 2, 3)}
    with Store.open_readonly(str(store)) as st:
        fp = {s["name"]: s["fingerprint"] for s in resolve(st, "soda-test").stages}["soda_cycles"]
        rows = outputs.load_output(st, fp)
        cycle3 = outputs.load_rejections(st, fp).filter(pl.col("detail").str.starts_with("cycle 3 new_questions:"))
    made = rows.filter(pl.col("soda_kind") == "new_question").group_by("cycle").agg(pl.col("instruction"))
    assert {k: sorted(q) for k, q in made.iter_rows()} == {k: sorted(script.written[k]) for k in (1, 2, 3)}
    cycle3_questions = rows.filter((pl.col("soda_kind") == "question") & (pl.col("cycle") == 3))["instruction"]
    assert not set(script.written[1]) & set(cycle3_questions)      # cycle 1's questions came from elsewhere
    for reason, earlier in (("duplicate", script.written[1][0]), ("near_duplicate", script.written[1][-1])):
        details = cycle3.filter(pl.col("reason") == reason)["detail"]
        assert all(repr(earlier[:120])[:60] in d for d in details), (reason, details.to_list())


def test_seen_questions_by_cosine_with_the_embedders_vectors():
    def embed(texts):        # unit vectors: what matters is the angle between them
        table = {"a": [1.0, 0.0], "a'": [0.96, 0.28], "b": [0.0, 1.0]}
        return [table[t] for t in texts]

    seen = SeenQuestions(threshold=0.8, num_perm=128, shingle=3, cosine=0.9)
    seen.add_vectors(["a"], embed(["a"]))
    assert seen.similar(np.array(embed(["a'"])[0])) == ("similar", "cosine 0.96 with 'a'")
    assert seen.similar(np.array(embed(["b"])[0])) is None
    off = SeenQuestions(threshold=0.8, num_perm=128, shingle=3)          # no threshold: no cosine look-up
    off.add_vectors(["a"], embed(["a"]))
    assert off.similar(np.array(embed(["a'"])[0])) is None


def test_cosine_dedup_with_the_recipes_embedder(soda_recipe, store, script):
    plan = stages(1)
    ask = next(s for s in plan if s["uses"] == "new_questions")
    # MinHash only for exact repeats (Jaccard 1), so a question with a word appended must be found by meaning
    ask["with"] = {**ask["with"], "per_tier": EVERY_TIER, "near_threshold": 1.0, "cosine_threshold": 0.9}
    recipe = soda_recipe(plan, limit=TASKS, embedder={"model": "all-minilm-l6-v2"})
    r = run_cli("compile", recipe, "--store", store, "--json")
    assert r.code == 0, r.err
    with Store.open_readonly(str(store)) as st:
        fp = {s["name"]: s["fingerprint"] for s in resolve(st, "soda-test").stages}["new_questions"]
        dropped = outputs.load_rejections(st, fp)
    drops = Counter(dropped["reason"])
    assert drops["near_duplicate"] == 0 and drops["similar"] >= 2, drops
    details = dropped.filter(pl.col("reason") == "similar")["detail"]
    assert all(d.startswith("cosine 0.9") or d.startswith("cosine 1.0") for d in details), details.to_list()
    again = run_cli("compile", recipe, "--store", store, "--json")
    assert again.code == 0 and json.loads(again.out)["llm_calls"] == 0
    assert json.loads(again.out)["embeddings_computed"] == 0
