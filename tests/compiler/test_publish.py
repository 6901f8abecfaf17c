"""distillc publish: the files of the upload, the dataset card, and the upload calls against a fake at
the HfApi edge (the only part that would talk to the paid/external service)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from types import SimpleNamespace

import datasets
import pytest

import compiler.publish as publish
from compiler.errors import DistillcError
from evals.problems import load_problems
from tests.compiler.conftest import run_cli, starter_tasks
from tests.loopback import LoopbackServer

RECIPE = """\
name: pub
description: A small corpus for the publish tests.
sources:
  - kind: jsonl
    path: {tasks}
    name: mine
    licence: Apache-2.0
teacher:
  backend: openai
  model: gpt-4o-mini
  base_url: {url}
stages:
  - uses: teacher_answer
  - uses: extract_code
  - uses: execute
  - uses: filter
  - uses: decontaminate
    with: {{benchmarks: [humaneval]}}
  - uses: format
"""


@pytest.fixture(scope="module")
def published_store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pub")
    tasks = starter_tasks(6)
    he = load_problems("humaneval", limit=1)[0]
    leak = {"task_id": "leak/1", "instruction": he.prompt, "entry_point": he.entry_point,
            "reference_solution": he.prompt + he.reference,
            "tests": {"style": "run", "entry_point": he.entry_point}}
    path = tmp / "tasks.jsonl"
    path.write_text("".join(json.dumps(t) + "\n" for t in tasks + [leak]))
    refs = {t["instruction"]: t["reference_solution"] for t in tasks + [leak]}

    def answer(body):
        text = body["messages"][-1]["content"]
        ref = next((r for ins, r in refs.items() if text.startswith(ins)), "pass\n")
        return f"```python\n{ref}```"
    with LoopbackServer(answer=answer) as server:
        recipe = tmp / "pub.yaml"
        recipe.write_text(RECIPE.format(tasks=path, url=server.url))
        store = tmp / "s.duckdb"
        os.environ.setdefault("OPENAI_API_KEY", "k")
        r = run_cli("compile", recipe, "--store", store, "--json")
        assert r.code == 0, r.err
    return store, recipe


def test_dry_run_writes_the_upload(published_store, tmp_path):
    store, recipe = published_store
    out = tmp_path / "dry"
    r = run_cli("publish", "pub@1", "--repo", "org/pub", "--dry-run", out, "--store", store, "--json")
    assert r.code == 0, r.err
    assert sorted(r.json()["files"]) == sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    card = (out / "README.md").read_text()
    assert card.startswith("---\nlicense: apache-2.0\n")
    for section in ("## Contents", "## Sources and licences", "## Models", "## Funnel per stage", "## Cost",
                    "## Decontamination", "## Lineage", "## Recipe", "## Library versions"):
        assert section in card
    assert "humaneval:HumanEval/0" in card and "`leak/1`" in card       # the decontamination report
    assert recipe.read_text().strip() in card and (out / "distillc/recipe.yaml").read_text() == recipe.read_text()
    ds = datasets.load_dataset("parquet", data_files=str(out / "data/StanD/*.parquet"), split="train")
    compiled = json.loads((out / "distillc/version.json").read_text())
    assert ds.num_rows == compiled["rows"] and {"prompt", "completion", "task_id"} <= set(ds.column_names)


def test_card_cost_equals_distillc_cost(published_store, tmp_path):
    store, _ = published_store
    run_cli("publish", "pub", "--repo", "org/pub", "--dry-run", tmp_path / "d", "--store", store)
    cost = run_cli("cost", "pub@1", "--store", store, "--json").json()
    record = json.loads((tmp_path / "d/distillc/version.json").read_text())
    assert record["usd"] == cost["usd"] and cost["usd"] > 0
    from compiler.commands.common import money
    assert f"Total: **{money(cost['usd'])}**" in (tmp_path / "d/README.md").read_text()


@dataclass
class FakeHub:
    """Records the calls distillc makes; can fail a call once, transiently or for good."""

    fail: dict[str, Exception] = field(default_factory=dict)
    calls: list[tuple[str, dict]] = field(default_factory=list)
    commits: list[SimpleNamespace] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    files: set[str] = field(default_factory=set)

    def _call(self, name, **kw):
        self.calls.append((name, kw))
        if name in self.fail:
            raise self.fail.pop(name)

    def create_repo(self, repo_id, **kw):
        self._call("create_repo", repo_id=repo_id, **kw)

    def list_repo_refs(self, repo_id, **kw):
        self._call("list_repo_refs")
        return SimpleNamespace(tags=[SimpleNamespace(name=t) for t in self.tags])

    def list_repo_commits(self, repo_id, **kw):
        self._call("list_repo_commits")
        return list(reversed(self.commits))

    def list_repo_files(self, repo_id, **kw):
        self._call("list_repo_files")
        return sorted(self.files)

    def create_commit(self, repo_id, operations, *, commit_message, **kw):
        self._call("create_commit", message=commit_message, ops=[type(o).__name__ + ":" + o.path_in_repo for o in operations])
        oid = f"c{len(self.commits)}"
        self.commits.append(SimpleNamespace(commit_id=oid, title=commit_message))
        for o in operations:
            (self.files.add if type(o).__name__ == "CommitOperationAdd" else self.files.discard)(o.path_in_repo)
        return SimpleNamespace(oid=oid)

    def create_tag(self, repo_id, *, tag, revision, **kw):
        self._call("create_tag", tag=tag, revision=revision)
        self.tags[tag] = revision


class Transient(Exception):
    response = SimpleNamespace(status_code=503)


def test_upload_is_one_commit_and_one_tag_and_idempotent(published_store, monkeypatch):
    store, _ = published_store
    hub = FakeHub(fail={"create_commit": Transient("busy")})
    monkeypatch.setattr(publish, "hf_api", lambda token=None: hub)
    monkeypatch.setattr(publish.time, "sleep", lambda s: None)
    r = run_cli("publish", "pub@1", "--repo", "org/pub", "--private", "--store", store, "--json")
    assert r.code == 0, r.err
    assert len(hub.commits) == 1 and hub.tags == {"v1": "c0"}       # the 503 was retried, not doubled
    assert ("create_repo", {"repo_id": "org/pub", "repo_type": "dataset", "private": True, "exist_ok": True}) in hub.calls
    ops = next(kw["ops"] for name, kw in hub.calls if name == "create_commit")
    assert "CommitOperationAdd:README.md" in ops and "CommitOperationAdd:data/StanD/train-00000-of-00001.parquet" in ops
    again = run_cli("publish", "pub@1", "--repo", "org/pub", "--store", store, "--json").json()
    assert again["uploaded"] is False and again["reason"] == "already published" and len(hub.commits) == 1


def test_crash_between_commit_and_tag_tags_the_landed_commit(published_store, monkeypatch):
    store, _ = published_store
    hub = FakeHub(fail={"create_tag": RuntimeError("process died")})
    monkeypatch.setattr(publish, "hf_api", lambda token=None: hub)
    r = run_cli("publish", "pub@1", "--repo", "org/pub", "--store", store)
    assert r.code == 1 and "create_tag" in r.err and len(hub.commits) == 1 and not hub.tags
    r = run_cli("publish", "pub@1", "--repo", "org/pub", "--store", store, "--json")
    assert r.code == 0 and r.json()["reason"] == "tagged an earlier commit"
    assert len(hub.commits) == 1 and hub.tags == {"v1": "c0"}


def test_bad_repo_and_permanent_errors(published_store, monkeypatch):
    store, _ = published_store
    assert run_cli("publish", "pub", "--repo", "not a repo", "--store", store).code == 1

    class Forbidden(Exception):
        response = SimpleNamespace(status_code=403)
    hub = FakeHub(fail={"create_repo": Forbidden("403 Forbidden: no write access")})
    monkeypatch.setattr(publish, "hf_api", lambda token=None: hub)
    r = run_cli("publish", "pub", "--repo", "org/pub", "--store", store)
    assert r.code == 1 and "403" in r.err and len(r.err.strip().splitlines()) == 1
    with pytest.raises(DistillcError):
        publish.with_retries(lambda: (_ for _ in ()).throw(Forbidden("x")), "op", sleep=lambda s: None)


def _png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (after checking the signature)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_card_embeds_its_charts_as_images_beside_the_readme(published_store, tmp_path, monkeypatch):
    store, _ = published_store
    out = tmp_path / "dry"
    assert run_cli("publish", "pub@1", "--repo", "org/pub", "--dry-run", out, "--store", store).code == 0
    card = (out / "README.md").read_text()
    for name in ("funnel", "cost_by_stage"):
        path = f"images/{name}.png"
        assert f"]({path})" in card                          # referenced by a relative path
        data = (out / path).read_bytes()
        width, height = _png_size(data)
        assert len(data) > 5_000 and width > 400 and height > 80, (path, len(data), width, height)
    assert card.index("](images/funnel.png)") < card.index("## Cost") < card.index("](images/cost_by_stage.png)")
    hub = FakeHub()
    monkeypatch.setattr(publish, "hf_api", lambda token=None: hub)
    assert run_cli("publish", "pub@1", "--repo", "org/pub", "--store", store).code == 0
    assert {"images/funnel.png", "images/cost_by_stage.png", "README.md"} <= hub.files
