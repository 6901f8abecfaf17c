"""Loading training data (exports, files, DatasetDicts of variants, Hub ids) and shaping it for chat
and plain students."""

from __future__ import annotations

import json

import datasets
import pytest

from compiler.store.db import Store
from compiler.store.versions import resolve
from tests.trainers.conftest import message_rows, pc_rows
from trainers.data import load_training_data, shape_for_student
from trainers.errors import TrainError


def test_hf_export_carries_the_corpus_version(corpus):
    data = load_training_data(str(corpus.export))
    with Store.open_readonly(corpus.store) as store:
        version = resolve(store, corpus.name)
    assert data.provenance["corpus"] == corpus.name and data.provenance["version"] == version.version
    assert data.provenance["fingerprint"] == version.fingerprint
    assert data.provenance["recipe"]["name"] == corpus.name
    assert data.provenance["variant"] == "StanD" and data.format == "prompt_completion"
    assert len(data.dataset) == version.rows


@pytest.mark.parametrize("attr", ["parquet", "jsonl"])
def test_parquet_and_jsonl_exports_load_with_provenance(corpus, attr):
    data = load_training_data(str(getattr(corpus, attr)))
    reference = load_training_data(str(corpus.export))
    assert data.provenance["fingerprint"] == corpus.fingerprint
    assert sorted(data.dataset["prompt"]) == sorted(reference.dataset["prompt"])


def test_a_single_jsonl_file_goes_through_load_dataset(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in pc_rows(3)))
    data = load_training_data(str(path))
    assert data.dataset["prompt"] == [r["prompt"] for r in pc_rows(3)]
    assert data.provenance["corpus"] is None


def test_dataset_dict_of_variants_needs_a_variant(tmp_path):
    both = datasets.DatasetDict({"PERsD": datasets.Dataset.from_list(pc_rows(3, "PERsD")),
                                 "StanD": datasets.Dataset.from_list(pc_rows(5, "StanD"))})
    both.save_to_disk(str(tmp_path / "d"))
    with pytest.raises(TrainError, match=r"several variants \(PERsD, StanD\)"):
        load_training_data(str(tmp_path / "d"))
    picked = load_training_data(str(tmp_path / "d"), variant="PERsD")
    assert len(picked.dataset) == 3 and picked.provenance["variant"] == "PERsD"
    with pytest.raises(TrainError, match=r"no variant 'InpD' \(variants: PERsD, StanD\)"):
        load_training_data(str(tmp_path / "d"), variant="InpD")


def test_variant_filters_a_mixed_dataset_and_provenance_overrides():
    mixed = datasets.Dataset.from_list(pc_rows(3, "PERsD") + pc_rows(4, "StanD"))
    data = load_training_data(mixed, variant="StanD", provenance={"corpus": "c", "version": 7})
    assert len(data.dataset) == 4 and set(data.dataset["variant"]) == {"StanD"}
    assert (data.provenance["corpus"], data.provenance["version"], data.provenance["variant"]) == ("c", 7, "StanD")
    unselected = load_training_data(mixed)
    assert unselected.provenance["variant"] is None and unselected.provenance["variants"] == ["PERsD", "StanD"]


@pytest.mark.parametrize("rows, match", [
    ([{"prompt": "p", "chosen": "a", "rejected": "b"}], "preference pairs"),
    ([{"text": "just text"}], "no prompt/completion or messages"),
])
def test_data_that_is_not_sft_data_is_refused(rows, match):
    with pytest.raises(TrainError, match=match):
        load_training_data(datasets.Dataset.from_list(rows))


def test_a_variant_is_read_by_the_columns_it_fills():
    """An export of several variants gives every variant every column: a messages variant's
    prompt/completion are nulls and must not make it look like prompt/completion data, and a
    variant whose completions are all null has none to train on."""
    turn = [{"role": "user", "content": "p"}, {"role": "assistant", "content": "c"}]
    mixed = datasets.Dataset.from_list(
        [{"prompt": "p", "completion": "c", "messages": None, "variant": "PC"}] * 2
        + [{"prompt": None, "completion": None, "messages": turn, "variant": "MSG"}] * 2
        + [{"prompt": "p", "completion": None, "messages": None, "variant": "BARE"}] * 2)
    msg = load_training_data(mixed, variant="MSG")
    assert msg.format == "messages" and "prompt" not in msg.dataset.column_names
    assert [c[0]["content"] for c in shape_for_student(msg.dataset, chat=True)["completion"]] == ["c", "c"]
    assert load_training_data(mixed, variant="PC").format == "prompt_completion"
    with pytest.raises(TrainError, match="has no completions to train on"):
        load_training_data(mixed, variant="BARE")


def test_a_row_without_a_completion_is_named():
    rows = datasets.Dataset.from_list([{"prompt": "p", "completion": "c"}, {"prompt": "p", "completion": None}])
    with pytest.raises(TrainError, match=r"row 1 has no completion \(null\)"):
        shape_for_student(rows, chat=True)


@pytest.mark.parametrize("source, match", [
    ("./nowhere/data", "no such dataset directory or file"),
    ("someone-offline/no-such-dataset", "Hugging Face Hub cannot provide it"),
])
def test_missing_sources_fail_in_one_line(source, match):
    with pytest.raises(TrainError, match=match) as info:
        load_training_data(source)
    assert "\n" not in str(info.value)


def test_a_directory_that_is_not_a_dataset(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(TrainError, match="not a dataset directory"):
        load_training_data(str(tmp_path))


def test_chat_shaping_wraps_strings_as_user_and_assistant_turns():
    shaped = shape_for_student(datasets.Dataset.from_list(pc_rows(2)), chat=True)
    assert shaped.column_names == ["prompt", "completion"]
    assert shaped[1]["prompt"] == [{"role": "user", "content": pc_rows(2)[1]["prompt"]}]
    assert shaped[1]["completion"] == [{"role": "assistant", "content": pc_rows(2)[1]["completion"]}]


def test_plain_shaping_keeps_strings():
    shaped = shape_for_student(datasets.Dataset.from_list(pc_rows(2)), chat=False)
    assert shaped[0] == {"prompt": pc_rows(2)[0]["prompt"], "completion": pc_rows(2)[0]["completion"]}


def test_messages_split_at_the_last_assistant_turn():
    rows = message_rows(1)
    chat = shape_for_student(datasets.Dataset.from_list(rows), chat=True)[0]
    assert chat["prompt"] == rows[0]["messages"][:2] and chat["completion"] == rows[0]["messages"][2:]
    plain = shape_for_student(datasets.Dataset.from_list(rows), chat=False)[0]
    assert plain["prompt"] == "You write short Python.\n\nReturn n times 0."
    assert plain["completion"] == "\n\ndef g(n):\n    return n * 0\n"


def test_messages_must_end_with_the_assistant():
    rows = [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x"},
                          {"role": "user", "content": "again"}]}]
    with pytest.raises(TrainError, match="must end with an assistant message"):
        shape_for_student(datasets.Dataset.from_list(rows), chat=True)
