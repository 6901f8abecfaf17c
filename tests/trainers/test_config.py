"""Presets, the TRL-style YAML run file, and the SFTConfig they turn into."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainers.config import PRESETS, SFTRunConfig, load_config, load_spec
from trainers.errors import ConfigError
from trainers.sft import sft_config

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_persd_paper_preset_reaches_the_papers_global_batch_by_accumulation():
    config = SFTRunConfig.from_preset("persd-paper")
    assert (config.learning_rate, config.num_train_epochs, config.max_length) == (5e-6, 20.0, 2048)
    assert config.lr_scheduler_type == "constant" and config.warmup_steps == 0
    assert config.per_device_train_batch_size == 4 and config.accumulation_for(1) == 480
    assert config.global_batch_size == 1920 and config.global_batch_for(8) == 1920
    assert config.accumulation_for(8) == 60 and config.resolved(8).gradient_accumulation_steps == 60
    wide = config.replace(per_device_train_batch_size=12)
    assert wide.accumulation_for(8) == 20 and wide.global_batch_for(8) == 1920      # the paper's 12 x 20 x 8
    record = config.to_dict()
    assert record["gradient_accumulation_steps"] == 480 and record["global_batch_size"] == 1920


def test_amr_evol_paper_preset_is_step_based_at_a_global_batch_of_128():
    config = SFTRunConfig.from_preset("amr-evol-paper")
    assert (config.max_steps, config.learning_rate, config.max_length) == (200, 2e-5, 2048)
    assert config.lr_scheduler_type == "cosine" and config.warmup_steps == 0.03
    assert config.accumulation_for(1) == 32 and config.global_batch_for(1) == 128
    assert config.accumulation_for(4) == 8 and config.global_batch_for(4) == 128
    spec = load_spec(ROOT / "trainers" / "configs" / "amr-evol-paper.yaml")
    assert spec.config.preset == "amr-evol-paper" and spec.config.max_steps == 200 and spec.variant == "AMR-Evol"


def test_an_explicit_accumulation_is_kept_without_a_target():
    config = SFTRunConfig(per_device_train_batch_size=2, gradient_accumulation_steps=3)
    assert config.accumulation_for(4) == 3 and config.global_batch_for(4) == 24


def test_modern_preset_is_the_default():
    config = SFTRunConfig()
    assert config == SFTRunConfig.from_preset("modern")
    assert (config.learning_rate, config.num_train_epochs, config.lr_scheduler_type) == (2e-5, 3.0, "cosine")
    assert 64 <= config.global_batch_size <= 128


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_become_a_real_sft_config(name, tmp_path):
    config = SFTRunConfig.from_preset(name)
    args = sft_config(config, tmp_path)
    assert args.learning_rate == config.learning_rate
    assert args.num_train_epochs == config.num_train_epochs
    assert str(args.lr_scheduler_type.value) == config.lr_scheduler_type
    assert args.completion_only_loss is True and args.max_length == config.max_length
    assert args.gradient_accumulation_steps == config.gradient_accumulation_steps
    assert str(args.save_strategy.value) == "no" and not args.bf16  # this CPU box


def test_yaml_with_trl_keys_preset_and_overrides(tmp_path):
    path = write(tmp_path, (
        "model_name_or_path: smollm2-135m\n"
        "dataset_name: data/exports/x\n"
        "variant: PERsD\n"
        "output_dir: out\n"
        "use_peft: true\n"
        "preset: persd-paper\n"
        "learning_rate: 1e-5\n"          # YAML 1.1 reads this as a string
        "lora_target_modules: [q_proj, v_proj]\n"
        "optim: adafactor\n"              # any SFTConfig field passes through
    ))
    spec = load_spec(path)
    assert (spec.student, spec.data, spec.variant, spec.out_dir, spec.lora) == (
        "smollm2-135m", "data/exports/x", "PERsD", "out", True)
    assert spec.config.preset == "persd-paper" and spec.config.num_train_epochs == 20.0
    assert spec.config.learning_rate == 1e-5
    assert spec.config.lora_target_modules == ("q_proj", "v_proj")
    assert dict(spec.config.sft_args) == {"optim": "adafactor"}
    assert str(sft_config(spec.config, tmp_path).optim.value) == "adafactor"
    assert load_config(path) == spec.config


@pytest.mark.parametrize("text, expected", [
    ("model_name_or_path: m\nlerning_rate: 0.1\n", ":2 lerning_rate: unknown setting (did you mean 'learning_rate'?)"),
    ("num_train_epochs: 2\nlearning_rate: high\n", ":2 learning_rate: expected a number, got 'high'"),
    ("per_device_train_batch_size: 2.5\n", ":1 per_device_train_batch_size: expected an integer, got 2.5"),
    ("use_peft: yes please\n", ":1 use_peft: expected true or false"),
    ("preset: persd\n", ":1 preset: unknown preset 'persd' (did you mean 'persd-paper'?)"),
    ("\nlearning_rate: -1\n", ":2 learning_rate: must be positive"),
    ("- a\n- b\n", "expected a mapping of settings"),
    ("learning_rate: [1\n", "not valid YAML"),
])
def test_bad_config_errors_name_the_file_line_and_key(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_spec(path)
    message = str(info.value)
    assert message.startswith(str(path)) and expected in message
    assert "\n" not in message


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the config"):
        load_spec(tmp_path / "absent.yaml")


def test_bad_values_in_code_are_refused():
    with pytest.raises(ConfigError, match="lora_dropout"):
        SFTRunConfig(lora_dropout=1.0)
    with pytest.raises(ConfigError, match="unknown preset"):
        SFTRunConfig.from_preset("ancient")


@pytest.mark.parametrize("name", ["smoke.yaml", "persd-paper.yaml", "amr-evol-paper.yaml"])
def test_shipped_example_configs_load(name):
    spec = load_spec(ROOT / "trainers" / "configs" / name)
    assert spec.student and spec.data and spec.out_dir
    assert spec.config.preset in PRESETS
