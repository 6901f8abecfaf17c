"""AMR-Evol's SFT records (``messages``: the instruction, then the evolved answer) train with the
existing ``distillc train``, on a tiny chat model."""

from __future__ import annotations

from tests.amr_evol.test_pipeline import world  # noqa: F401  (the compiled AMR-Evol store)
from tests.compiler.conftest import run_cli


def test_distillc_train_trains_on_amr_evol_records(world, tiny_model_dir, tmp_path):  # noqa: F811
    out = tmp_path / "student"
    config = tmp_path / "quick.yaml"
    config.write_text("per_device_train_batch_size: 2\ngradient_accumulation_steps: 1\nmax_length: 512\n")
    r = run_cli("train", "amr-test:AMR-Evol", "--student", tiny_model_dir, "--out", out, "--config", config,
                "--max-steps", "2", "--store", world.store, "--json")
    assert r.code == 0, r.err
    summary = r.json()
    assert summary["variant"] == "AMR-Evol" and summary["steps"] == 2 and summary["rows"] > 0
    assert (out / "config.json").is_file()
