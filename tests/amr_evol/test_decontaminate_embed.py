"""``decontaminate_embed``: HumanEval problems query the training rows with the real default embedder;
the judge (scripted, on the loopback server) says which neighbour is the same problem; that row is
dropped with the benchmark task id in its reason's detail."""

from __future__ import annotations

import json

from compiler.store import outputs
from compiler.store.db import Store
from compiler.store.versions import resolve
from tests.compiler.conftest import run_cli
from tests.loopback import LoopbackServer

ROWS = [
    {"task_id": "t/close", "instruction": "Given a list of floats, tell whether any two of them are closer to each "
                                          "other than a threshold."},
    {"task_id": "t/reverse", "instruction": "Reverse the order of the words of a sentence."},
    {"task_id": "t/bank", "instruction": "Simulate a bank account that refuses withdrawals beyond its balance."},
]
RECIPE = """\
name: decontam
sources:
  - kind: jsonl
    path: {tasks}
judge:
  backend: openai
  model: gpt-4o
  base_url: {url}
stages:
  - uses: decontaminate_embed
    with: {{benchmarks: [humaneval], top_k: 2, min_score: {floor}}}
"""


def judge(body: dict) -> str:
    text = body["messages"][-1]["content"]
    problem_a, problem_b = text.split("Problem A:", 1)[1].split("Problem B:", 1)
    same = "closer to each other than" in problem_a and "closer to each other" in problem_b
    return "Yes, the same problem." if same else "No."


def test_the_judged_neighbour_is_dropped_with_the_benchmark_id(tmp_path):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    store = tmp_path / "s.duckdb"
    with LoopbackServer(answer=judge) as server:
        recipe = tmp_path / "r.yaml"
        recipe.write_text(RECIPE.format(tasks=tasks, url=server.url, floor="null"))
        out = run_cli("compile", recipe, "--store", store, "--json")
        assert out.code == 0, out.err
        assert out.json()["llm_calls"] == 164 * 2 == server.tally.answered    # every top-2 pair is judged
        floor = tmp_path / "floor.yaml"
        floor.write_text(RECIPE.format(tasks=tasks, url=server.url, floor=0.6).replace("name: decontam", "name: floor"))
        cheap = run_cli("compile", floor, "--store", store, "--json").json()
        assert cheap["llm_calls"] == 0 and cheap["embeddings_computed"] == 0   # answers and vectors: cached
    with Store.open_readonly(str(store)) as st:
        for name, judged in (("decontam", (328, 328)), ("floor", (1, 20))):
            v = resolve(st, name)
            n = st.con.execute("SELECT count(*) FROM llm_calls WHERE stage_fp = ?", [v.fingerprint]).fetchall()[0][0]
            assert judged[0] <= n <= judged[1]          # min_score: only the close pairs reach the judge
            kept = outputs.load_output(st, v.fingerprint)["task_id"].to_list()
            assert kept == ["t/reverse", "t/bank"]
            (reason, detail), = st.con.execute("SELECT reason, detail FROM rejections WHERE fingerprint = ?",
                                               [v.fingerprint]).fetchall()
            assert reason == "contaminated" and detail.startswith("humaneval:HumanEval/0 (the judge: same problem; cosine ")
