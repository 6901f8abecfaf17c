"""Progress bars on stderr: shown when stderr is a terminal, or forced with ``DISTILLC_PROGRESS=1``
(``0`` hides them). Third-party bars (model loading, dataset writing) follow the same switch."""

from __future__ import annotations

import os
import sys


def progress_enabled() -> bool:
    flag = os.environ.get("DISTILLC_PROGRESS")
    if flag is not None:
        return flag not in ("0", "", "false", "no")
    return sys.stderr.isatty()


def quiet_third_party_bars() -> None:
    """Hide the Hub/transformers/datasets bars too when ours are hidden (call before importing them)."""
    if not progress_enabled():
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")


def progress_bar(total: int | None, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, disable=not progress_enabled(),
                leave=False, dynamic_ncols=True)
