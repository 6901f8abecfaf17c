"""``new_questions``: SODA's feedback-based knowledge update (METHODS §3(b) S3, §3(i)): the teacher
writes new questions from each tiered question — prompt C (a rarer, more different question of the
same domain) for an easy one, prompt D (a sibling of the same domain and task type) for a medium or
hard one, more of them the harder the question — and those that are new, and not benchmark
problems, become the next cycle's seeds.

"New" means not a duplicate of any question seen so far in the run: the source tasks, the questions
of this frame, the new questions accepted in earlier cycles (``soda_cycles`` hands them over) and
those accepted before it in this stage, in order. Exact duplicates (after lower-casing and collapsing
space) and MinHash near duplicates are dropped, and with ``cosine_threshold`` (METHODS §3 suggests
0.9) questions whose embedding by the recipe's ``embedder`` is at least that close to a seen
question's (``similar``); embeddings are cached in the store like every other stage's.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np
import polars as pl
from pydantic import Field

from compiler.llm.types import LLMRequest
from compiler.methods.soda.parse import created_instruction
from compiler.methods.soda.questions import NEW_QUESTION, QUESTION_READS, TIERS, Tier, question_text
from compiler.methods.soda.templates import new_question_prompt
from compiler.stages.base import REJECTION_SCHEMA, Params, Stage, StageOutput, derive_id, register
from compiler.stages.decontaminate import BenchmarkIndex, Decontaminate
from compiler.stages.dedup import tokens

if TYPE_CHECKING:
    from compiler.runner import StageContext


class SeenQuestions:
    """Every question seen so far, for exact, MinHash near-duplicate and (given ``cosine``, with the
    vectors the caller adds) embedding look-ups."""

    def __init__(self, threshold: float, num_perm: int, shingle: int, seed: int = 1,
                 cosine: float | None = None):
        from datasketch import MinHashLSH

        self.threshold, self.num_perm, self.shingle, self.seed = threshold, num_perm, shingle, seed
        self.exact: dict[str, str] = {}
        self.lsh = MinHashLSH(threshold=min(0.9 * threshold, 0.9), num_perm=num_perm)
        self.hashes: dict[str, Any] = {}
        self.cosine = cosine
        self.vectors: list[np.ndarray] = []
        self.labels: list[str] = []
        self._matrix: np.ndarray | None = None

    def similar(self, vector: np.ndarray) -> tuple[str, str] | None:
        """(``similar``, detail) when ``vector`` is within the cosine threshold of a seen question's."""
        if self.cosine is None or not self.vectors:
            return None
        if self._matrix is None or len(self._matrix) != len(self.vectors):
            self._matrix = np.stack(self.vectors)
        scores = self._matrix @ vector
        best = int(np.argmax(scores))
        if scores[best] >= self.cosine:
            return "similar", f"cosine {float(scores[best]):.2f} with {self.labels[best]!r}"[:300]
        return None

    def add_vectors(self, texts: list[str], vectors: np.ndarray) -> None:
        for text, vector in zip(texts, vectors):
            self.vectors.append(np.asarray(vector, dtype=np.float32))
            self.labels.append(text.strip()[:120])

    def _minhash(self, toks: list[str]) -> Any:
        from datasketch import MinHash

        grams = {" ".join(toks[i:i + self.shingle]) for i in range(max(1, len(toks) - self.shingle + 1))}
        mh = MinHash(num_perm=self.num_perm, seed=self.seed)
        mh.update_batch(sorted(g.encode() for g in grams))
        return mh

    def match(self, text: str) -> tuple[str, str] | None:
        """(reason, detail) when ``text`` repeats a seen question, else None."""
        toks = tokens(text)
        key = hashlib.sha256(" ".join(toks).encode()).hexdigest()
        if key in self.exact:
            return "duplicate", f"same text as {self.exact[key]!r}"[:300]
        mh = self._minhash(toks)
        best = max(((k, mh.jaccard(self.hashes[k])) for k in self.lsh.query(mh)), key=lambda x: x[1], default=None)
        if best is not None and best[1] >= self.threshold:
            return "near_duplicate", f"Jaccard ~{best[1]:.2f} with {self.exact[best[0]]!r}"[:300]
        return None

    def add(self, text: str) -> None:
        toks = tokens(text)
        key = hashlib.sha256(" ".join(toks).encode()).hexdigest()
        if not toks or key in self.exact:
            return
        self.exact[key] = text.strip()[:120]
        self.hashes[key] = self._minhash(toks)
        self.lsh.insert(key, self.hashes[key])

    def add_all(self, texts: Iterable[str | None]) -> None:
        for text in texts:
            if text:
                self.add(text)


@register
class NewQuestions(Stage):
    """The teacher writes ``per_tier[tier]`` new questions from each question (default easy 1, medium
    2, hard 3; METHODS §3(h)3), with prompt C for easy questions and prompt D for medium and hard ones,
    each sample its own request. The text after the first ``#Created Instruction#:`` that starts a line
    (up to a line starting another marker) is the new question;
    dropped are answers without the marker (``missing_marker``), duplicates and near duplicates of any
    question seen so far in the run (``duplicate``, ``near_duplicate``: MinHash over token shingles,
    confirmed at ``near_threshold`` Jaccard), questions overlapping a benchmark (``contaminated``,
    ``decontaminate``'s rules and params) and ``llm_failed`` (a dropped question is recorded under its
    question's task id, so its cost stays with that task). The question rows pass through; each new
    question is a new row (``soda_kind`` ``new_question``, parent: its question) carrying the question's
    ``cycle``, ``origin_tier``, ``origin_prompt`` (C or D), ``new_question_call`` and a task id
    ``<task_id>/c<cycle>q<n>``."""

    name = "new_questions"
    version = 2
    roles = ("teacher",)
    scope = "frame"
    reads = (*QUESTION_READS, "tier", "cycle", "soda_kind")
    writes = ("origin_tier", "origin_prompt", "new_question_call")

    class Params(Params):
        per_tier: dict[Tier, int] = Field(default_factory=lambda: {"easy": 1, "medium": 2, "hard": 3},
                                          description="new questions asked per question of each tier")
        temperature: float = Field(default=1.0, ge=0, description="sampling temperature (samples of one "
                                   "prompt must differ)")
        top_p: float = Field(default=1.0, gt=0, le=1, description="nucleus sampling")
        max_tokens: int = Field(default=512, ge=1, description="completion length limit")
        seed: int | None = Field(default=None, description="one fixed sampling seed for every request of "
                                 "this stage (default: from the recipe's `seed`, the row and the sample)")
        near_threshold: float = Field(default=0.8, gt=0, le=1, description="MinHash Jaccard at which a new "
                                      "question is a near duplicate of a seen one")
        shingle: int = Field(default=3, ge=1, description="tokens per shingle")
        num_perm: int = Field(default=128, ge=16, le=1024, description="MinHash permutations")
        cosine_threshold: float | None = Field(default=None, gt=0, le=1, description="also drop a new "
                                               "question whose embedding (the recipe's `embedder`) has at "
                                               "least this cosine similarity with a seen question's (reason "
                                               "`similar`; METHODS §3 suggests 0.9); null: exact and MinHash only")
        decontaminate: Decontaminate.Params | None = Field(
            default_factory=Decontaminate.Params, description="benchmark check of the new questions: the "
            "`decontaminate` stage's params (its `columns` unused); null: no check")

    @classmethod
    def embeds_for(cls, params: "NewQuestions.Params") -> bool:
        return params.cosine_threshold is not None

    @classmethod
    def expected_requests(cls, params: "NewQuestions.Params", frame: pl.DataFrame) -> dict[str, int] | None:
        if "tier" not in frame.columns:
            return None
        return {"teacher": sum(params.per_tier.get(t, 0) for t in frame["tier"] if t)}

    @classmethod
    def prior_requests(cls, params: "NewQuestions.Params") -> dict[str, tuple[float, float, float]]:
        counts = [float(params.per_tier.get(t, 0)) for t in TIERS]
        return {"teacher": (min(counts), sum(counts) / len(counts), max(counts))}

    @classmethod
    def sample_requests(cls, params: "NewQuestions.Params", tasks: pl.DataFrame) -> list[LLMRequest]:
        return [LLMRequest(messages=(("user", new_question_prompt(question_text(r), "hard")),),
                           max_tokens=params.max_tokens) for r in tasks.iter_rows(named=True)]

    def run(self, frame: pl.DataFrame, ctx: "StageContext") -> StageOutput:
        asks = self._asks(frame)
        results = ctx.generate("teacher", [a["request"] for a in asks])
        seen = self._seen(frame, ctx)
        index = self.params.decontaminate and Decontaminate(self.params.decontaminate).index(ctx.base_dir)
        made, dropped = [], []
        vectors = self._candidate_vectors(results, ctx) if seen.cosine is not None else {}
        for ask, result in zip(asks, results):
            row, reason, detail = self._judge(ask, result, seen, index)
            vector = vectors.get(row["instruction"]) if row["instruction"] else None
            if reason is None and vector is not None:
                repeated = seen.similar(vector)
                if repeated is not None:
                    reason, detail = repeated
            if reason is None:
                seen.add(row["instruction"])
                if vector is not None:
                    seen.add_vectors([row["instruction"]], vector[None, :])
                made.append(row)
            else:
                dropped.append({"row_id": row["row_id"], "task_id": ask["row"]["task_id"], "reason": reason,
                                "detail": detail})
        new = pl.DataFrame(made, schema=self._schema(frame)) if made else None
        out = pl.concat([frame, new], how="diagonal_relaxed") if new is not None else frame
        return StageOutput(out, pl.DataFrame(dropped, schema=REJECTION_SCHEMA))

    def _asks(self, frame: pl.DataFrame) -> list[dict[str, Any]]:
        p, asks = self.params, []
        for row in frame.filter(pl.col("soda_kind") == "question").iter_rows(named=True):
            for j in range(p.per_tier.get(row["tier"], 0)):
                new_id = derive_id(row["row_id"], self.name, j)
                request = LLMRequest(messages=(("user", new_question_prompt(question_text(row), row["tier"])),),
                                     temperature=p.temperature, top_p=p.top_p, max_tokens=p.max_tokens,
                                     seed=p.seed, sample_index=j, served_rows=(new_id,))
                asks.append({"row": row, "id": new_id, "sample": j, "request": request})
        return asks

    def _seen(self, frame: pl.DataFrame, ctx: "StageContext") -> SeenQuestions:
        p = self.params
        seen = SeenQuestions(p.near_threshold, p.num_perm, p.shingle, cosine=p.cosine_threshold)
        texts = [t for t in (*ctx.tasks()["instruction"], *getattr(ctx, "seen_questions", ()), *frame["instruction"])
                 if t]
        seen.add_all(texts)
        if seen.cosine is not None and texts:
            distinct = list(dict.fromkeys(texts))
            seen.add_vectors(distinct, ctx.embeddings().vectors(distinct))
        return seen

    @staticmethod
    def _candidate_vectors(results: list[Any], ctx: "StageContext") -> dict[str, np.ndarray]:
        """The embedding of every new question the teacher wrote (one batch; cached in the store)."""
        texts = list(dict.fromkeys(t for t in (created_instruction(r.text or "") if r.ok else None
                                              for r in results) if t))
        return dict(zip(texts, ctx.embeddings().vectors(texts))) if texts else {}

    def _judge(self, ask: dict[str, Any], result: Any, seen: SeenQuestions,
               index: BenchmarkIndex | None) -> tuple[dict[str, Any], str | None, str | None]:
        """The new row, and why it is dropped (None when it is kept)."""
        parent, j = ask["row"], ask["sample"]
        text = created_instruction(result.text or "") if result.ok else None
        task_id = f"{parent['task_id']}/c{parent['cycle']}q{j + 1}"
        row = {"row_id": ask["id"], "parent_ids": [parent["row_id"]], "task_id": task_id,
               "instruction": text, "source": parent["source"], "language": parent["language"],
               "meta": json.dumps({"parent_task_id": parent["task_id"], "tier": parent["tier"]}),
               "cycle": parent["cycle"], "soda_kind": NEW_QUESTION, "origin_tier": parent["tier"],
               "origin_prompt": "C" if parent["tier"] == "easy" else "D", "new_question_call": result.call_id}
        if not result.ok:
            return row, "llm_failed", result.error
        if text is None:
            return row, "missing_marker", f"no `#Created Instruction#:` in the answer: {(result.text or '')[:300]}"
        repeated = seen.match(text)
        if repeated is not None:
            return row, *repeated
        match = index.best_match(text, self.params.decontaminate.min_overlap) if index is not None else None
        if match is not None:
            return row, "contaminated", f"{match[0]} ({match[1]} shared {index.n}-grams, {match[2]:.0%} overlap)"
        return row, None, None

    @staticmethod
    def _schema(frame: pl.DataFrame) -> dict[str, Any]:
        keep = ("row_id", "parent_ids", "task_id", "instruction", "source", "language", "meta", "cycle",
                "soda_kind", "origin_tier", "origin_prompt")
        return {**{c: frame.schema[c] for c in keep if c in frame.columns}, "new_question_call": pl.String}
