"""Reading rows of task and benchmark data: local JSON / JSON Lines (optionally gzipped) / Parquet
files, and Hugging Face Hub datasets.

Every row comes with a location string (``tasks.jsonl:12`` for a line, ``mbpp.json row 3`` for the
0-based index of an array element or a table row) so that callers can report a bad row in one line.
Problems are raised as :class:`DataError`, whose message is that one line.
"""

from __future__ import annotations

import gzip
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

Row = dict[str, Any]


class DataError(Exception):
    """A data file or dataset cannot be read; ``str(err)`` is one line naming the file and row."""


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def file_format(path: Path) -> str:
    """``jsonl``, ``json`` or ``parquet`` from the file name (``.gz`` is looked through)."""
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    last = suffixes[-1] if suffixes else ""
    if last in (".jsonl", ".ndjson"):
        return "jsonl"
    if last == ".json":
        return "json"
    if last in (".parquet", ".pq"):
        return "parquet"
    raise DataError(f"{path}: unknown file type (expected .jsonl, .json or .parquet, optionally .gz)")


def _open_text(path: Path):
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def iter_rows(path: str | Path, fmt: str | None = None) -> Iterator[tuple[str, Row]]:
    """``(location, row)`` for every row of a local file; ``fmt`` defaults to the file's suffix."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    fmt = fmt or file_format(path)
    readers = {"jsonl": _jsonl_rows, "json": _json_rows, "parquet": _parquet_rows}
    if fmt not in readers:
        raise DataError(f"{path}: unknown format {fmt!r}")
    try:
        yield from readers[fmt](path)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({_one_line(exc)})") from None


def _jsonl_rows(path: Path) -> Iterator[tuple[str, Row]]:
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})") from None
            yield where, _object(row, where)


def _json_rows(path: Path) -> Iterator[tuple[str, Row]]:
    with _open_text(path) as fh:
        try:
            data = json.load(fh)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON array of objects, got {type(data).__name__}")
    for i, row in enumerate(data):
        where = f"{path} row {i}"
        yield where, _object(row, where)


def _parquet_rows(path: Path) -> Iterator[tuple[str, Row]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise DataError(f"{path}: not a readable Parquet file ({_one_line(exc)})") from None
    for i, row in enumerate(table.to_pylist()):
        yield f"{path} row {i}", row


def _object(row: Any, where: str) -> Row:
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
    return row


# -- Hugging Face Hub ------------------------------------------------------------------------------

def hub_rows(dataset: str, config: str | None = None, split: str | None = None,
             revision: str | None = None, *, local_copy: str = "give a local copy") -> Iterator[tuple[str, Row]]:
    """``(location, row)`` for a Hub dataset (or anything ``datasets.load_dataset`` accepts, such as
    a local dataset directory). Without ``split`` the dataset must have exactly one split.
    ``local_copy`` tells the caller's user how to point at a local copy when the Hub is out of reach."""
    import datasets

    shown = dataset + (f" ({config})" if config else "")
    state = {"unreachable": False}
    try:
        with _quiet_hub(local=Path(dataset).expanduser().exists(), state=state):
            loaded = datasets.load_dataset(dataset, config, split=split, revision=revision)
    except Exception as exc:  # network, missing config/split, offline mode: all one line for the user
        hint = f" (the Hub cannot be reached from here and the dataset is not cached: {local_copy})" \
            if state["unreachable"] else ""
        raise DataError(f"{shown}: cannot load dataset: {_one_line(exc)}{hint}") from None
    if isinstance(loaded, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        if len(loaded) != 1:
            raise DataError(f"{shown}: has splits {sorted(loaded)}; choose one with `split`")
        split, loaded = next(iter(loaded.items()))
    for i, row in enumerate(loaded):
        yield f"{shown}[{split}] row {i}", dict(row)


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hub endpoint answers a TCP connection (a cheap check before a download)."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


@contextmanager
def _quiet_hub(*, local: bool, state: dict[str, bool]) -> Iterator[None]:
    """Load without the Hub's retry chatter; when the Hub cannot be reached, go straight to offline
    mode (the local cache, or one clear error) instead of retrying for half a minute."""
    import datasets
    from huggingface_hub import constants
    from huggingface_hub.utils import logging as hub_logging

    saved = (constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE, hub_logging.get_verbosity(),
             datasets.logging.get_verbosity())
    hub_logging.set_verbosity_error()
    datasets.logging.set_verbosity_error()
    if not local and not saved[0] and not hub_reachable():
        constants.HF_HUB_OFFLINE = datasets.config.HF_HUB_OFFLINE = state["unreachable"] = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE = saved[0], saved[1]
        hub_logging.set_verbosity(saved[2])
        datasets.logging.set_verbosity(saved[3])
