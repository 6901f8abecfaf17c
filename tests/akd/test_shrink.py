"""``trainers.shrink``: a smaller student from a model's own config, sharing its tokenizer."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from trainers.errors import TrainError
from trainers.shrink import RECORD, kept_layers, main, shrink


def test_kept_layers_are_spread_evenly_with_both_ends():
    assert kept_layers(30, 6) == [0, 6, 12, 17, 23, 29]
    assert kept_layers(4, 2) == [0, 3] and kept_layers(5, 1) == [0]


def test_a_one_layer_student_of_a_two_layer_model(tiny_base_model_dir, tmp_path):
    out = tmp_path / "small"
    record = shrink(str(tiny_base_model_dir), out, layers=1)
    assert record["kept"] == [0] and record["of"] == 2 and json.loads((out / RECORD).read_text()) == record
    big, small = load_file(str(tiny_base_model_dir / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert not any(".layers.1." in k for k in small)
    assert all(torch.equal(small[k], big[k]) for k in small)                  # layer 0, embeddings, norm
    assert json.loads((out / "config.json").read_text())["num_hidden_layers"] == 1
    assert (out / "tokenizer.json").read_text() == (tiny_base_model_dir / "tokenizer.json").read_text()


def test_random_init_and_bad_layer_counts(tiny_base_model_dir, tmp_path, capsys):
    record = shrink(str(tiny_base_model_dir), tmp_path / "r", layers=1, init="random")
    assert record["kept"] is None and record["init"] == "random"
    with pytest.raises(TrainError, match="has 2 layers; choose 1 to 1"):
        shrink(str(tiny_base_model_dir), tmp_path / "x", layers=2)
    capsys.readouterr()
    assert main([str(tiny_base_model_dir), "--layers", "0", "--out", str(tmp_path / "y")]) == 1
    assert capsys.readouterr().err.strip().startswith("trainers.shrink: error: --layers:")
