"""Requests that fail for good never become nulls, and a stage whose requests failed only for now
(an overloaded teacher) is not saved: compiling again retries exactly those requests. A teacher that
never answers at all (nothing listening, nothing answered in time, a rejected key) stops the compile
at once: exit 1, one line."""

from __future__ import annotations

import socket

from tests.compiler.conftest import STARTER, reference_answerer, run_cli, starter_tasks
from tests.loopback import Faults, LoopbackServer

RECIPE = """\
name: flaky
sources:
  - kind: jsonl
    path: {tasks}
    limit: 6
teacher:
  backend: openai
  model: loopback
  base_url: {url}
  max_retries: 1
  timeout_s: 2
stages:
  - uses: teacher_answer
  - uses: extract_code
  - uses: execute
  - uses: filter
  - uses: format
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write(tmp_path, url):
    path = tmp_path / "flaky.yaml"
    path.write_text(RECIPE.format(tasks=STARTER, url=url))
    return path


def test_dead_teacher_stops_at_once_with_one_line_and_a_rerun_completes(tmp_path):
    store = tmp_path / "s.duckdb"
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    recipe = tmp_path / "flaky.yaml"
    recipe.write_text(RECIPE.format(tasks=STARTER, url=url).replace("  max_retries: 1\n",
                                                                     "  max_retries: 1\n  max_concurrency: 2\n"))
    r = run_cli("compile", recipe, "--store", store, "--json")
    assert r.code == 1 and r.out == ""
    line = r.err.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line
    # names the role, the endpoint, the reason and the stage; the 4 requests behind the 2 in flight were never sent
    assert f"teacher 'loopback' at {url}: unreachable (connection" in line and "'teacher_answer'" in line
    assert "4 requests were never sent" in line and "teacher.base_url" in line
    ls = run_cli("ls", "--store", store, "--json")
    assert ls.code == 0 and ls.json()["corpora"] == []        # no version was made
    with LoopbackServer(answer=reference_answerer(starter_tasks())) as server:
        r = run_cli("compile", write(tmp_path, server.url), "--store", store, "--json")
        assert r.code == 0, r.err
        assert r.json()["llm_calls"] == 6 == server.tally.answered and r.json()["rows"] == 6


def test_a_teacher_that_never_answers_in_time_stops_after_the_first_request_runs_out(tmp_path):
    store = tmp_path / "s.duckdb"
    hangs = Faults(rate_timeout=1.0, hang_s=5)
    with LoopbackServer(answer=reference_answerer(starter_tasks()), faults=hangs) as server:
        recipe = tmp_path / "flaky.yaml"
        recipe.write_text(RECIPE.format(tasks=STARTER, url=server.url).replace(
            "  max_retries: 1\n  timeout_s: 2\n", "  max_retries: 1\n  timeout_s: 0.5\n  max_concurrency: 1\n"))
        r = run_cli("compile", recipe, "--store", store)
        assert server.tally.requests == 2                     # one request, two attempts; nothing else sent
    assert r.code == 1 and len(r.err.strip().splitlines()) == 1
    assert "unresponsive (timeout: no answer within 0.5s)" in r.err and "5 requests were never sent" in r.err
    assert "raise teacher.timeout_s" in r.err


def test_a_rejected_api_key_stops_after_the_first_answer(tmp_path):
    store = tmp_path / "s.duckdb"
    with LoopbackServer(answer=reference_answerer(starter_tasks()), faults=Faults(rate_401=1.0)) as server:
        recipe = tmp_path / "flaky.yaml"
        recipe.write_text(RECIPE.format(tasks=STARTER, url=server.url).replace(
            "  max_retries: 1\n", "  max_retries: 1\n  max_concurrency: 1\n"))
        r = run_cli("compile", recipe, "--store", store)
        assert r.code == 1 and len(r.err.strip().splitlines()) == 1
        assert "http_401" in r.err and "incorrect API key" in r.err and "5 requests were never sent" in r.err
        assert server.tally.requests == 1                     # not once per task
    assert run_cli("ls", "--store", store, "--json").json()["corpora"] == []


def test_requests_waiting_for_a_slot_when_the_endpoint_is_found_dead_are_not_sent(tmp_path):
    """30 requests, up to 64 at once, but the adaptive limit starts at 16: the 14 waiting for a slot
    when the first 401 comes back are handed back unsent, not sent one by one as slots free up."""
    with LoopbackServer(answer=reference_answerer(starter_tasks()), faults=Faults(rate_401=1.0)) as server:
        recipe = tmp_path / "flaky.yaml"
        recipe.write_text(RECIPE.format(tasks=STARTER, url=server.url).replace("    limit: 6\n", "    limit: 30\n")
                          .replace("  max_retries: 1\n", "  max_retries: 1\n  max_concurrency: 64\n"))
        r = run_cli("compile", recipe, "--store", tmp_path / "s.duckdb")
    assert r.code == 1 and "http_401" in r.err
    assert server.tally.requests <= 16, server.tally.requests
    unsent = int(r.err.split(" requests were never sent")[0].rsplit(" ", 1)[1])
    assert unsent == 30 - server.tally.requests


def test_a_teacher_that_answered_once_is_not_halted_by_later_rejections(tmp_path):
    """Once any answer came back, a 401 is about that request (a key scoped per model, say): the rest
    are still tried. Seed 0's first draw is not a fault, so the first request is answered."""
    with LoopbackServer(answer=reference_answerer(starter_tasks()), faults=Faults(rate_401=0.5), seed=0) as server:
        recipe = tmp_path / "flaky.yaml"
        recipe.write_text(RECIPE.format(tasks=STARTER, url=server.url).replace(
            "  max_retries: 1\n", "  max_retries: 1\n  max_concurrency: 1\n"))
        r = run_cli("compile", recipe, "--store", tmp_path / "s.duckdb", "--json")
        statuses = server.tally.statuses
    assert server.tally.requests == 6                          # every task was tried
    assert 0 < statuses["401"] < 6
    assert r.code == 0 and "warning" in r.err and r.json()["rows"] == 6 - statuses["401"]


def test_a_few_transient_failures_are_retried_by_the_next_compile(tmp_path):
    store = tmp_path / "s.duckdb"
    with LoopbackServer(answer=reference_answerer(starter_tasks()), faults=Faults(rate_500=0.5), seed=3) as server:
        recipe = write(tmp_path, server.url)
        first = run_cli("compile", recipe, "--store", store, "--json")
        assert first.code == 4 and "http_500" in first.err
        answered = server.tally.answered
        assert 0 < answered < 6
        server.faults = Faults()
        again = run_cli("compile", recipe, "--store", store, "--json")
        assert again.code == 0, again.err
        assert again.json()["llm_calls"] == 6 - answered == server.tally.answered - answered
        assert again.json()["rows"] == 6


def test_permanent_failures_drop_rows_with_a_warning_and_all_failing_is_an_error(tmp_path):
    with LoopbackServer(answer=reference_answerer(starter_tasks()), faults=Faults(rate_400=0.5), seed=3) as server:
        r = run_cli("compile", write(tmp_path, server.url), "--store", tmp_path / "a.duckdb", "--json")
        assert r.code == 0, r.err
        assert "warning" in r.err and "llm_failed" in r.err
        show = run_cli("show", "flaky", "--store", tmp_path / "a.duckdb", "--json").json()
        dropped = {s["name"]: s["dropped"] for s in show["stages"]}["teacher_answer"]
        assert dropped["llm_failed"] == 6 - r.json()["rows"] > 0
    with LoopbackServer(answer=reference_answerer(starter_tasks()), faults=Faults(rate_400=1.0)) as server:
        r = run_cli("compile", write(tmp_path, server.url), "--store", tmp_path / "b.duckdb")
        assert r.code == 1 and "all 6 LLM requests failed" in r.err and len(r.err.strip().splitlines()) == 1
