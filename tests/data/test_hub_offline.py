"""A Hub dataset that cannot be reached fails fast with one line, without the Hub's retry chatter."""

from __future__ import annotations

import socket
import time

import datasets
import pytest
from huggingface_hub import constants

from evals.datafiles import DataError, hub_reachable, hub_rows


def test_unreachable_hub_fails_fast_with_one_line(monkeypatch, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]                     # nothing listens here once the socket closes
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    assert not hub_reachable(timeout=1.0)
    started = time.perf_counter()
    with pytest.raises(DataError) as info:
        list(hub_rows("someone/not-cached-anywhere", split="train"))
    assert time.perf_counter() - started < 15
    message = str(info.value)
    assert "\n" not in message and "someone/not-cached-anywhere" in message and "local copy" in message
    assert constants.HF_HUB_OFFLINE is False          # offline mode was only for this load
    assert "Retrying" not in capsys.readouterr().err
