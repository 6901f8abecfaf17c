"""Fingerprints that tell the truth: the recipe's seed seeds every sampling request (and only the
sampling stages' fingerprints), the sandbox's semantics version enters every stage that runs code,
and nothing that identifies a stage's output falls back to a silent default."""

from __future__ import annotations

import json

import pytest

from compiler.plan import make_plan
from compiler.recipe.loader import load_recipe
from compiler.runner import compile_recipe, request_seed
from compiler.store.db import Store
from tests.compiler.conftest import STARTER
from tests.loopback import LoopbackServer, default_answer

RECIPE = """\
name: seeded
seed: {seed}
sources:
  - kind: jsonl
    path: {tasks}
    limit: 4
teacher:
  backend: {backend}
  model: {model}
  base_url: {url}
stages:
  - uses: teacher_answer
    with: {{n: 2, temperature: {temperature}, max_tokens: 8}}
  - uses: extract_code
  - uses: execute
"""


def write(tmp_path, *, seed=0, temperature=0.7, backend="openai", model="gpt-4o-mini", url="http://127.0.0.1:9/v1"):
    path = tmp_path / f"r-{seed}-{temperature}-{backend}.yaml"
    path.write_text(RECIPE.format(seed=seed, tasks=STARTER, backend=backend, model=model, url=url,
                                  temperature=temperature))
    return path


def fps(path) -> dict[str, str]:
    return {s.name: s.fingerprint for s in make_plan(load_recipe(path)).steps}


def test_the_seed_enters_only_sampling_stages(tmp_path):
    sampled_0, sampled_1 = fps(write(tmp_path, seed=0)), fps(write(tmp_path, seed=1))
    assert sampled_0["teacher_answer"] != sampled_1["teacher_answer"]
    greedy_0, greedy_1 = fps(write(tmp_path, seed=0, temperature=0.0)), fps(write(tmp_path, seed=1, temperature=0.0))
    assert greedy_0 == greedy_1               # greedy answers do not depend on a seed: nothing re-bought


def test_the_sandbox_semantics_version_enters_execute(tmp_path, monkeypatch):
    from evals.sandbox import cache

    path = write(tmp_path, temperature=0.0)
    before = fps(path)
    monkeypatch.setattr(cache, "SEMANTICS_VERSION", cache.SEMANTICS_VERSION + "-next")
    cache._python_runtime.cache_clear()
    try:
        after = fps(path)
    finally:
        monkeypatch.undo()
        cache._python_runtime.cache_clear()
    assert after["execute"] != before["execute"]
    assert after["teacher_answer"] == before["teacher_answer"] and after["extract_code"] == before["extract_code"]


def test_a_missing_sandbox_identity_is_an_error_not_a_default(tmp_path, monkeypatch):
    from evals.sandbox import cache

    monkeypatch.delattr(cache, "SEMANTICS_VERSION")
    with pytest.raises(ImportError):
        fps(write(tmp_path, temperature=0.0))


def test_request_seeds_depend_on_seed_row_and_sample():
    seeds = {request_seed(s, r, k) for s in (0, 1) for r in ("a", "b") for k in (0, 1)}
    assert len(seeds) == 8 and all(0 <= s < 2 ** 31 for s in seeds)
    assert request_seed(3, "row", 1) == request_seed(3, "row", 1)


def answers(store) -> list[str]:
    with Store.open_readonly(str(store)) as st:
        rows = st.con.execute("SELECT c.response FROM llm_calls l JOIN llm_cache c ON l.key = c.key "
                              "WHERE l.status IN ('ok', 'retried') ORDER BY l.created_at, l.call_id").fetchall()
    return sorted(json.loads(r[0])["text"] for r in rows)


def test_a_new_seed_draws_new_samples_and_the_old_one_finds_them_again(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    store = tmp_path / "s.duckdb"
    bodies: list[dict] = []

    def answer(body: dict) -> str:           # a hash of the whole request body, seed included
        bodies.append(body)
        return default_answer(body)

    with LoopbackServer(answer=answer) as server:
        first = compile_recipe(write(tmp_path, seed=0, url=server.url), str(store))
        seeds = [b.get("seed") for b in bodies]
        assert first.llm_calls == 8 and len(set(seeds)) == 8 and None not in seeds   # each request its own seed
        texts_0 = answers(store)
        second = compile_recipe(write(tmp_path, seed=1, url=server.url), str(store))
        assert "teacher_answer" in second.stages_run and second.llm_calls == 8
        assert second.version.version == first.version.version + 1
        assert set(answers(store)) - set(texts_0)                         # different samples
        sent = server.tally.requests
        again = compile_recipe(write(tmp_path, seed=0, url=server.url), str(store))
        assert again.version.version == first.version.version and again.version.fingerprint == first.version.fingerprint
        assert again.llm_calls == 0 and again.stages_run == [] and server.tally.requests == sent


def test_in_process_backends_sample_by_the_seed_too(tmp_path, tiny_model_dir):
    store = tmp_path / "s.duckdb"
    model = str(tiny_model_dir)
    texts = {}
    for seed in (0, 1, 0):
        result = compile_recipe(write(tmp_path, seed=seed, backend="transformers", model=model, temperature=1.0),
                                str(store))
        texts.setdefault(seed, []).append(answers_of_version(store, result.version.fingerprint))
    assert texts[0][0] == texts[0][1]        # the same seed, the same samples (the second time from the cache)
    assert texts[0][0] != texts[1][0]        # another seed, other samples


def answers_of_version(store, fingerprint: str) -> list[str]:
    with Store.open_readonly(str(store)) as st:
        stages = json.loads(st.con.execute("SELECT stages FROM versions WHERE fingerprint = ?",
                                           [fingerprint]).fetchone()[0])
        fp = next(s["fingerprint"] for s in stages if s["name"] == "teacher_answer")
        return sorted(r[0] for r in st.con.execute(f"SELECT answer FROM so_{fp}").fetchall())
