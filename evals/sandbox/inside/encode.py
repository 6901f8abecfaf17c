"""A JSON encoding of Python values that keeps what plain JSON loses (tuples, sets, dicts with
non-string keys, NaN/inf, bytes, complex numbers, big integers).

The child encodes a program's return value; the parent decodes it and compares it with the
expected value it holds. Encoding reads only trusted types by exact type (a subclass of ``int``
with a custom ``__eq__`` is not an ``int`` here); anything else is sent as its ``repr`` under a
tag that never compares equal to a real value.
"""

from __future__ import annotations

import math

TAG = "__dc__"
_MAX_DEPTH = 200
_MAX_REPR = 2000


class Opaque:
    """A decoded value the child could not encode: only its type name and repr survive."""

    __slots__ = ("type_name", "text")

    def __init__(self, type_name: str, text: str) -> None:
        self.type_name, self.text = type_name, text

    def __repr__(self) -> str:
        return self.text

    def __eq__(self, other) -> bool:
        return False

    __hash__ = None


def _float(x: float):
    if math.isfinite(x):
        return x
    return {TAG: "float", "v": repr(x)}


def _numpy_scalar(value):
    t = type(value)
    if t.__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    return None


def encode(value, depth: int = 0):
    """The JSON-ready form of ``value``."""
    if depth > _MAX_DEPTH:
        raise ValueError("value nested too deeply")
    t = type(value)
    if value is None or t is bool or t is str:
        return value
    if t is int:
        return value if abs(value) < 2**53 else {TAG: "int", "v": str(value)}
    if t is float:
        return _float(value)
    if t is list:
        return [encode(v, depth + 1) for v in value]
    if t is tuple:
        return {TAG: "tuple", "v": [encode(v, depth + 1) for v in value]}
    if t in (set, frozenset):
        return {TAG: t.__name__, "v": [encode(v, depth + 1) for v in value]}
    if t is dict:
        return {TAG: "dict", "v": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
    if t is complex:
        return {TAG: "complex", "v": [_float(value.real), _float(value.imag)]}
    if t in (bytes, bytearray):
        return {TAG: "bytes", "v": bytes(value).hex()}
    scalar = _numpy_scalar(value)
    if scalar is not None:
        return encode(scalar, depth + 1)
    if t.__name__ == "ndarray" and t.__module__ == "numpy":
        return encode(value.tolist(), depth + 1)
    return {TAG: "repr", "type": t.__qualname__, "v": _safe_repr(value)}


def _safe_repr(value) -> str:
    try:
        text = repr(value)
    except BaseException as exc:                      # noqa: BLE001 - any failure is just shown
        text = f"<unrepresentable: {type(exc).__name__}>"
    return text if len(text) <= _MAX_REPR else text[:_MAX_REPR] + "..."


def _decode_float(v):
    return float(v) if isinstance(v, str) else v


def _decode_tagged(obj: dict):
    tag, v = obj[TAG], obj.get("v")
    if tag == "tuple":
        return tuple(decode(x) for x in v)
    if tag in ("set", "frozenset"):
        return frozenset(_hashable(decode(x)) for x in v)
    if tag == "dict":
        return {_hashable(decode(k)): decode(val) for k, val in v}
    if tag == "float":
        return float(v)
    if tag == "int":
        return int(v)
    if tag == "complex":
        return complex(_decode_float(v[0]), _decode_float(v[1]))
    if tag == "bytes":
        return bytes.fromhex(v)
    return Opaque(str(obj.get("type", "?")), str(v))


def decode(obj):
    """Inverse of :func:`encode`; plain JSON decodes to itself."""
    if isinstance(obj, list):
        return [decode(x) for x in obj]
    if isinstance(obj, dict):
        if TAG in obj:
            return _decode_tagged(obj)
        return {k: decode(v) for k, v in obj.items()}
    return obj


def _hashable(value):
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, Opaque):
        return ("__opaque__", value.text)
    return value
