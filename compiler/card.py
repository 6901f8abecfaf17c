"""The dataset card of a published corpus version: what it holds, how it was made (the recipe), where
its tasks came from and under which licences, the funnel per stage, what it cost, the models, the
decontamination report, lineage and library versions. Everything is read from the store.

The funnel and the cost per stage are also drawn as PNG images (offline, by :mod:`compiler.charts`),
uploaded beside the README under ``images/`` and referenced from the card by relative path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from compiler.commands.common import money
from compiler.cost import version_cost
from compiler.inspect import funnel, variant_counts
from compiler.store.db import Store
from compiler.store.versions import Version

KNOWN_LICENCES = {  # licences of the built-in and well-known sources (a source's `licence:` wins)
    "humaneval": "MIT",
    "mbpp": "CC-BY-4.0",
    "google-research-datasets/mbpp": "CC-BY-4.0",
    "sahil280114/codealpaca": "CC-BY-NC-4.0",
    "evalplus/mbppplus": "Apache-2.0",
}
HF_LICENCE_IDS = {"MIT": "mit", "CC-BY-4.0": "cc-by-4.0", "CC-BY-NC-4.0": "cc-by-nc-4.0",
                  "Apache-2.0": "apache-2.0", "CC BY-NC 4.0": "cc-by-nc-4.0"}


def source_licences(version: Version) -> list[dict[str, Any]]:
    out = []
    for s in version.recipe.get("sources", []):
        local = s.get("path") and Path(s["path"]).name     # never publish a local directory layout
        origin = s.get("dataset") or (s["kind"] if s["kind"] in ("humaneval", "mbpp") else local)
        licence = s.get("licence") or KNOWN_LICENCES.get(s.get("dataset") or "") or KNOWN_LICENCES.get(s["kind"])
        out.append({"name": s.get("name") or origin or s["kind"], "kind": s["kind"], "origin": origin,
                    "config": s.get("config"), "split": s.get("split"), "licence": licence or "unknown"})
    return out


def card_licence(sources: list[dict[str, Any]]) -> str:
    ids = {HF_LICENCE_IDS.get(s["licence"], "other") for s in sources}
    return ids.pop() if len(ids) == 1 else "other"


def decontamination(store: Store, version: Version) -> dict[str, Any]:
    rows = store.con.execute(
        "SELECT task_id, detail FROM rejections WHERE reason = 'contaminated' AND list_contains(?, fingerprint) "
        "ORDER BY task_id", [version.fingerprints]).fetchall()
    by_benchmark: dict[str, int] = {}
    for _, detail in rows:
        bench = (detail or "unknown").split(":", 1)[0]
        by_benchmark[bench] = by_benchmark.get(bench, 0) + 1
    checked = [s for s in version.stages if s["uses"] == "decontaminate"]
    return {"checked": bool(checked), "dropped": len(rows), "by_benchmark": by_benchmark,
            "examples": [{"task_id": t, "detail": d} for t, d in rows[:50]]}


def card_data(store: Store, version: Version) -> dict[str, Any]:
    return {
        "version": version, "variants": variant_counts(store, version) or {"default": version.rows},
        "funnel": funnel(store, version), "cost": version_cost(store, version, "stage"),
        "examples": version_cost(store, version, "example"), "sources": source_licences(version),
        "decontamination": decontamination(store, version),
    }


IMAGES = {"funnel": "images/funnel.png", "cost_by_stage": "images/cost_by_stage.png"}


def card_images(data: dict[str, Any]) -> dict[str, bytes]:
    """The card's charts as PNG files, by their path in the upload."""
    from compiler import charts

    return {IMAGES["funnel"]: charts.funnel(data["funnel"], fmt="png"),
            IMAGES["cost_by_stage"]: charts.cost_by_stage(data["cost"]["groups"], fmt="png")}


def _image(images: dict[str, str], name: str, alt: str) -> str:
    return f"\n![{alt}]({images[name]})\n" if name in images else ""


def _header(data: dict[str, Any], files: dict[str, list[str]]) -> str:
    v: Version = data["version"]
    configs = [{"config_name": name, "data_files": [{"split": "train", "path": paths}]}
               for name, paths in files.items()]
    configs[0]["default"] = True
    meta = {"license": card_licence(data["sources"]), "pretty_name": f"{v.corpus} (distillc corpus)",
            "task_categories": ["text-generation"], "language": ["en"],
            "tags": ["code", "distillation", "distillc", "synthetic"], "configs": configs}
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n"


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def render_card(data: dict[str, Any], files: dict[str, list[str]], images: dict[str, str] | None = None) -> str:
    """The README; ``images`` maps chart names (keys of :data:`IMAGES`) to their relative paths."""
    v: Version = data["version"]
    images = images or {}
    recipe, cost, ex = v.recipe, data["cost"], data["examples"]
    parts = [_header(data, files), f"# {v.corpus} — version {v.version}\n",
             (recipe.get("description") or "") + "\n",
             f"Compiled by distillc from a declarative recipe. Corpus fingerprint `{v.fingerprint}`; "
             f"created {str(v.created_at)[:19]} UTC.\n",
             "## Contents\n", _table(["config (variant)", "rows"], [[k, n] for k, n in data["variants"].items()]),
             "\nColumns follow TRL's conventions (`prompt`/`completion` or `messages`), plus `task_id`, `variant`, "
             "`source` and `row_id` (the record's id in the corpus lineage).\n",
             "## Sources and licences\n",
             _table(["source", "kind", "origin", "config", "split", "licence"],
                    [[s["name"], s["kind"], s["origin"], s["config"] or "", s["split"] or "", s["licence"]]
                     for s in data["sources"]]),
             "\nRecords inherit the licences of their sources, and teacher outputs the terms of use of the "
             "teacher model's provider.\n",
             "## Models\n",
             _table(["role", "backend", "model", "revision"],
                    [[role, m["backend"], m["model"], m.get("revision") or ""] for role in ("teacher", "student", "judge")
                     if (m := recipe.get(role))]),
             "\n## Funnel per stage\n", _image(images, "funnel", "Rows kept and dropped (by reason) per stage"),
             _table(["stage", "uses", "rows in", "rows out", "dropped", "LLM calls", "usd"],
                    [[s["name"], s["uses"], s["rows_in"], s["rows_out"],
                      ", ".join(f"{k}: {n}" for k, n in s["dropped"].items()) or "—", s["llm_calls"], money(s["usd"])]
                     for s in data["funnel"]]),
             "\n## Cost\n",
             f"Total: **{money(cost['usd'])}** over {cost['total']['calls']} LLM calls "
             f"({cost['total']['prompt_tokens']} prompt and {cost['total']['completion_tokens']} completion tokens; "
             f"{cost['total']['cache_hits']} answered from the cache). Per kept example: "
             f"{money(ex['per_example_usd'])} on average, each example carrying its ancestors' cost and its share "
             "of discarded siblings.\n",
             _image(images, "cost_by_stage", "Cost per stage (USD)"),
             _table(["stage", "calls", "usd"], [[g["stage"], g["calls"], money(g["usd"])] for g in cost["groups"]]),
             "\n" + _table(["variant", "examples", "usd", "mean per example"],
                           [[k, g["examples"], money(g["usd"]), money(g["mean_usd"])] for k, g in ex["by_variant"].items()]),
             "\n## Decontamination\n", _decontamination_text(data["decontamination"]),
             "## Lineage\n",
             _table(["#", "stage", "uses", "fingerprint"],
                    [[i, s["name"], s["uses"], f"`{s['fingerprint']}`"] for i, s in enumerate(v.stages)]),
             "\nEach stage's fingerprint hashes its parent's fingerprint, its name and version, its params and "
             "the models it calls; every record's `row_id` links to its ancestors in the store.\n",
             "## Recipe\n", "```yaml\n" + v.recipe_yaml.rstrip() + "\n```\n",
             "## Library versions\n", _table(["library", "version"], [[k, x] for k, x in v.library_versions.items()]),
             ""]
    return "\n".join(parts)


def _decontamination_text(d: dict[str, Any]) -> str:
    if not d["checked"]:
        return "This recipe has no `decontaminate` stage: records were **not** checked against benchmarks.\n"
    head = f"{d['dropped']} rows dropped for overlapping a benchmark"
    if not d["dropped"]:
        return head + ".\n"
    body = ", ".join(f"{b}: {n}" for b, n in d["by_benchmark"].items())
    listing = "\n".join(f"- `{e['task_id']}`: {e['detail']}" for e in d["examples"])
    return f"{head} ({body}):\n\n{listing}\n"


def version_json(data: dict[str, Any]) -> str:
    v: Version = data["version"]
    return json.dumps({"corpus": v.corpus, "version": v.version, "fingerprint": v.fingerprint,
                       "stages": v.stages, "rows": v.rows, "variants": data["variants"],
                       "usd": data["cost"]["usd"], "library_versions": v.library_versions,
                       "created_at": str(v.created_at)}, indent=2) + "\n"
