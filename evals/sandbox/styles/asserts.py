"""Judging assert-based tests (HumanEval and MBPP): the child decided whether each assert held
(with trusted operands only); this turns its report into PERsD-style failure detail."""

from __future__ import annotations


def judge_case(spec, index: int, event: dict) -> tuple[bool, dict | None]:
    if event.get("ok"):
        return True, None
    if event.get("kind") == "untrusted":
        return False, {"error_type": "UntrustedValue", "message": event.get("msg", "")}
    if event.get("call") is not None and "output" in event:
        return False, {"input": event.get("args") or "", "output": event["output"],
                       "expected": event.get("expected") or "", "test": event.get("source")}
    message = event.get("msg") or (event.get("source") or "assertion failed")
    return False, {"error_type": "AssertionError", "message": message}
