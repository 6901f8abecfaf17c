"""LLM calls for the compiler: backends, the request cache, the cost ledger, budgets.

Stages use :class:`compiler.llm.client.LLMClient` (``generate(requests, stage=, stage_fp=)``); the
runner builds one per role with a shared :class:`compiler.llm.budget.Budget`. Modules:

- ``types``: requests, results, usage (the shared contract; cache keys).
- ``backend``: the backend protocol, its typed errors, ``make_backend``.
- ``openai_backend`` + ``transport``: any OpenAI-compatible endpoint through ``AsyncOpenAI``.
- ``transformers_backend``, ``vllm_backend``: in-process backends.
- ``dispatch`` + ``concurrency``: workers, adaptive concurrency, rpm/tpm limits, retries.
- ``batch``: the OpenAI Batch API mode.
- ``cache``, ``recorder``, ``fold``: the raw response cache and the ledger's write path (a journal
  line per event, group commits to DuckDB, recovery of what a dead process journaled).
- ``prices`` (+ ``prices.json``), ``budget``, ``estimate``, ``ledger``: dollars in, dollars out.
"""
