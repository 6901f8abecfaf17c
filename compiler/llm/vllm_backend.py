"""In-process generation with vLLM on a GPU machine.

vLLM is imported lazily (by :mod:`evals.models` and :mod:`evals.generate`), and only when both the
package and a CUDA GPU are present; otherwise construction fails at once with the install command.
Everything else is the transformers backend's: requests are grouped by sampling settings, chat
requests go through ``LLM.chat`` and raw prompts through ``LLM.generate``, each with its own seed
in ``SamplingParams``.
"""

from __future__ import annotations

from typing import Any

from compiler.errors import MissingDependency
from compiler.llm.transformers_backend import TransformersBackend
from compiler.recipe.schema import ModelConfig
from evals import models

INSTALL_HINT = "install distillc[gpu] on a GPU machine (pip install 'distillc[gpu]')"


class VLLMBackend(TransformersBackend):
    """A ``vllm.LLM`` in this process."""

    kind = "vllm"
    concurrent = False

    def __init__(self, config: ModelConfig):
        if not models.vllm_available():
            raise MissingDependency(f"the vllm backend needs the vllm package and a CUDA GPU: {INSTALL_HINT}")
        super().__init__(config)

    def _load(self) -> tuple[Any, Any]:
        return models.load_model(self.config.model, dtype=self.config.dtype,
                                 revision=self.config.revision, engine="vllm")
