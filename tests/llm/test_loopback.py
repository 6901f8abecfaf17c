"""The loopback server itself: standalone mode (used by bench scripts) and its usage accounting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.llm.conftest import chat_requests
from tests.loopback import count_tokens, prompt_tokens

ROOT = Path(__file__).resolve().parents[2]


def test_standalone_server_prints_its_url_and_serves_until_stdin_closes():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "tests.loopback"], cwd=ROOT, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        with urllib.request.urlopen(url + "/models", timeout=10) as resp:
            assert json.load(resp)["data"][0]["id"] == "loopback"
    finally:
        proc.stdin.close()
        assert proc.wait(10) == 0
    assert json.loads(proc.stdout.readline())["requests"] == 0


def test_usage_counts_words_with_per_message_overhead():
    body = {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "add two numbers"}]}
    assert prompt_tokens(body) == (2 + 4) + (3 + 4) + 2
    assert prompt_tokens({"prompt": "def f(x):"}) == count_tokens("def f(x):") + 1


def test_large_batches_show_a_progress_bar_on_stderr(loopback_server, make_client, capsys):
    make_client(loopback_server).generate(chat_requests(60), stage="teach", stage_fp="f", progress=True)
    captured = capsys.readouterr()
    assert "teach [teacher]" in captured.err and captured.out == ""
    make_client(loopback_server).generate(chat_requests(60, prefix="q"), stage="quiet", stage_fp="g",
                                          progress=False)
    assert "quiet" not in capsys.readouterr().err
