"""Stage fingerprints: hash(parent fingerprints, ``name@version``, canonical params, the identity of
the models it calls). Code is never hashed: a stage's ``version`` is bumped when its behaviour
changes. Params are canonicalised (defaults dropped, keys sorted) so that spelling a default out
does not change the fingerprint."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel

FINGERPRINT_CHARS = 20


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def canonical_params(params: BaseModel) -> dict[str, Any]:
    return params.model_dump(mode="json", exclude_defaults=True, by_alias=True)


def fingerprint(payload: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()[:FINGERPRINT_CHARS]


def stage_fingerprint(*, parents: list[str], uses: str, version: int, params: BaseModel,
                      extra: dict[str, Any] | None = None) -> str:
    payload = {"parents": parents, "stage": f"{uses}@{version}", "params": canonical_params(params)}
    if extra:
        payload["extra"] = extra
    return fingerprint(payload)
