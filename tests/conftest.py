"""Shared fixtures. Fixture modules live beside this file and are imported here."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DISTILLC_CHECK_STORAGE", "1")   # every stored partition read back and compared

from tests.tiny_models import embedded_model_dir, tiny_base_model_dir, tiny_model_dir  # noqa: E402,F401
from tests.loopback import loopback_server, make_loopback  # noqa: E402,F401
from tests.browser import browser  # noqa: E402,F401
