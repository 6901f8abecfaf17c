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

    kind: SourceKind
    name: str | None = None                # label stored in the task table's `source` column
    path: str | None = None                # local file (jsonl/json/parquet; mbpp: a local copy)
    dataset: str | None = None             # Hub dataset id (kind: hub; mbpp: overrides the default id)
    config: str | None = None              # Hub config name (mbpp: full | sanitized)
    split: str | None = None               # Hub split, or an MBPP split (train/test/validation/prompt)
    revision: str | None = None            # Hub revision (commit, tag or branch)
    columns: dict[str, str] = Field(default_factory=dict)  # normalised field -> source column
    task_ids: list[str] | None = None      # keep only these task ids
    limit: int | None = Field(default=None, ge=1)  # keep the first N tasks
    licence: str | None = None             # recorded in the dataset card

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

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)
    batch_discount: float = Field(default=0.5, ge=0, le=1)


class ModelConfig(Strict):
    """A teacher, student or judge model and the backend that serves it."""

    model: str
    backend: Literal["openai", "transformers", "vllm"] = "transformers"
    revision: str | None = None
    base_url: str | None = None            # openai backend: any OpenAI-compatible endpoint
    api_key_env: str = "OPENAI_API_KEY"    # name of the environment variable holding the key
    max_concurrency: int = Field(default=64, ge=1)   # upper bound; the backend adapts below it
    timeout_s: float = Field(default=120.0, gt=0)    # per request
    max_retries: int = Field(default=6, ge=0)
    rpm: int | None = Field(default=None, ge=1)      # requests per minute limit
    tpm: int | None = Field(default=None, ge=1)      # tokens per minute limit
    batch: bool = False                    # openai: use the Batch API
    batch_size: int = Field(default=8, ge=1)         # in-process backends: sequences per forward batch
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    chat: bool | None = None               # use the chat template (None: when the model has one)
    prices: PriceConfig | None = None

    def identity(self) -> dict[str, Any]:
        """What about this model determines its answers (enters stage fingerprints)."""
        return {"backend": self.backend, "model": self.model, "revision": self.revision}


class StageConfig(Strict):
    uses: str                              # a registered stage
    name: str | None = None                # unique name in the recipe (default: `uses`)
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")

    @property
    def label(self) -> str:
        return self.name or self.uses


class ExportConfig(Strict):
    formats: list[Literal["hf", "parquet", "jsonl"]] = Field(default_factory=lambda: ["hf"])
    dir: str | None = None                 # default export directory for `distillc export`


class BudgetConfig(Strict):
    usd: float | None = Field(default=None, ge=0)
    stages: dict[str, float] = Field(default_factory=dict)


class Recipe(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    sources: list[SourceConfig] = Field(min_length=1)
    teacher: ModelConfig | None = None
    student: ModelConfig | None = None
    judge: ModelConfig | None = None
    stages: list[StageConfig] = Field(default_factory=list)
    export: ExportConfig = Field(default_factory=ExportConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    seed: int = 0

    def model_for(self, role: str) -> ModelConfig | None:
        return {"teacher": self.teacher, "student": self.student, "judge": self.judge}.get(role)
