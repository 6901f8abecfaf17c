"""kill -9 during cycle 2, then compile again: the same corpus as an uninterrupted run, cycle 1 and the
cycle-2 stages that had finished are not run again, and the rerun pays again at most the calls the kill
left in flight."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import yaml

from compiler.llm import ledger
from compiler.store.db import Store
from tests.compiler.conftest import ROOT, STARTER, starter_tasks
from tests.loopback import LoopbackServer, repaid
from tests.soda.conftest import CORRECT_BROKEN, FAULTY, LIMIT, STUDENT_WRONG, models, stages
from tests.soda.scripted import SodaScript


class WatchedScript(SodaScript):
    """Notes when the first request about a question of cycle 2 (one it wrote) arrives."""

    cycle2_at: float | None = None

    def respond(self, body, *, only_own=True):
        text = body["messages"][-1]["content"]
        if self.cycle2_at is None and "#Given Instruction#" in text and "`fn_" in text and "#Response#" in text:
            self.cycle2_at = time.monotonic()
        return super().respond(body, only_own=only_own)


def scripted() -> WatchedScript:
    return WatchedScript(starter_tasks(LIMIT), faulty=dict(FAULTY), correct_broken=set(CORRECT_BROKEN),
                         student_wrong=set(STUDENT_WRONG))


def write_recipe(directory: Path, servers: dict[str, LoopbackServer]) -> Path:
    roles = models(servers)
    for config in roles.values():
        config["max_concurrency"] = 2
    recipe = {"name": "soda-crash", "sources": [{"kind": "jsonl", "path": str(STARTER), "limit": LIMIT}],
              **roles, "stages": stages(2)}
    path = directory / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def compile_proc(recipe: Path, store: Path) -> subprocess.Popen:
    env = {**os.environ, "OPENAI_API_KEY": "k", "DISTILLC_PROGRESS": "0"}
    return subprocess.Popen([sys.executable, "-m", "compiler.cli", "compile", str(recipe), "--store", str(store),
                             "--json"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def corpus(store: Path) -> list[tuple]:
    con = duckdb.connect(str(store), read_only=True)
    try:
        fp = con.execute("SELECT fingerprint FROM versions ORDER BY version DESC LIMIT 1").fetchall()[0][0]
        return con.execute(f"SELECT row_id, variant, cycle, CAST(prompt AS VARCHAR), CAST(chosen AS VARCHAR), "
                           f"CAST(rejected AS VARCHAR), CAST(completion AS VARCHAR) FROM so_{fp} ORDER BY row_id").fetchall()
    finally:
        con.close()


def serve(script: SodaScript):
    """Teacher, student and judge; the judge is slow, so that its requests are in flight when killed."""
    return [LoopbackServer(answer=script, latency=latency) for latency in (0.02, 0.02, 0.2)]


def test_kill_9_in_cycle_2_then_rerun(tmp_path):
    clean_script = scripted()
    clean_servers = dict(zip(("teacher", "student", "judge"), serve(clean_script)))
    for s in clean_servers.values():
        s.start()
    try:
        (tmp_path / "a").mkdir()
        proc = compile_proc(write_recipe(tmp_path / "a", clean_servers), tmp_path / "a" / "s.duckdb")
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        expected = corpus(tmp_path / "a" / "s.duckdb")
        need = {role: s.tally.bodies.copy() for role, s in clean_servers.items()}
    finally:
        for s in clean_servers.values():
            s.stop()
    assert {row[2] for row in expected} == {1, 2}

    script = scripted()
    servers = dict(zip(("teacher", "student", "judge"), serve(script)))
    for s in servers.values():
        s.start()
    try:
        (tmp_path / "b").mkdir()
        recipe, store = write_recipe(tmp_path / "b", servers), tmp_path / "b" / "s.duckdb"
        proc = compile_proc(recipe, store)
        deadline, judged = time.monotonic() + 120, None
        while proc.poll() is None and time.monotonic() < deadline:
            if script.cycle2_at is not None and judged is None:
                judged = servers["judge"].tally.requests        # cycle 2's judge calls start after this
            if judged is not None and servers["judge"].tally.requests >= judged + 3:
                break
            time.sleep(0.005)
        assert proc.poll() is None, "the compile finished before it could be killed in cycle 2"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(0.3)
        with Store.open_readonly(str(store)) as st:
            in_flight = ledger.interrupted(st.con)
            done = st.con.execute("SELECT count(*) FROM stage_outputs WHERE stage LIKE 'soda_cycles:cycle2:%'").fetchall()[0][0]
            assert st.con.execute("SELECT count(*) FROM versions").fetchall()[0][0] == 0
        assert done >= 1 and in_flight >= 1                 # killed after some cycle-2 stages, with calls in flight

        rerun = compile_proc(recipe, store)
        out, err = rerun.communicate(timeout=300)
        assert rerun.returncode == 0, err
        result = json.loads(out)
        assert {s["name"] for s in result["stages"] if not s["cached"]} == {"soda_cycles", "emit_soda"}
        assert corpus(store) == expected
        paid_again = sum(repaid(s.tally.bodies, need[role]) for role, s in servers.items())
        assert paid_again <= in_flight, (paid_again, in_flight)
        with Store.open_readonly(str(store)) as st:
            stored = st.con.execute("SELECT stage, count(*) FROM stage_outputs WHERE stage LIKE 'soda_cycles:cycle2:%' "
                                    "GROUP BY 1 HAVING count(*) > 1").fetchall()
        assert stored == []                                 # each cycle-2 stage stored once
    finally:
        for s in servers.values():
            s.stop()
