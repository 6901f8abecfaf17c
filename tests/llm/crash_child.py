"""A process that generates N loopback answers into a store and writes their texts to a file.

The crash test runs it, kills it with SIGKILL mid-way, and runs it again.
Usage: python -m tests.llm.crash_child STORE URL N OUT [--batch]
"""

from __future__ import annotations

import json
import sys

from compiler.llm.client import LLMClient
from compiler.llm.concurrency import RetryPolicy
from compiler.recipe.schema import ModelConfig
from compiler.store.db import Store
from tests.llm.conftest import chat_requests


def main(argv: list[str]) -> None:
    path, url, n, out = argv[0], argv[1], int(argv[2]), argv[3]
    batch = "--batch" in argv
    config = ModelConfig(model="gpt-4o-mini", backend="openai", base_url=url, max_concurrency=8, batch=batch)
    with Store.open(path) as store:
        client = LLMClient(config, store=store, role="teacher", retry=RetryPolicy(0.02, 0.2), batch_poll_s=0.02)
        results = client.generate(chat_requests(n), stage="teach", stage_fp="fp-crash", progress=False)
    with open(out, "w") as f:
        json.dump([r.text for r in results], f)


if __name__ == "__main__":
    main(sys.argv[1:])
