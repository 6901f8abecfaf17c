"""Fingerprints: invariant to key order and spelled-out defaults, sensitive to everything else."""

from __future__ import annotations

from compiler.fingerprint import canonical_params, stage_fingerprint
from compiler.stages.generate import TeacherAnswer


def fp(params: dict, *, parents=("p0",), version=1, extra=None) -> str:
    return stage_fingerprint(parents=list(parents), uses="teacher_answer", version=version,
                             params=TeacherAnswer.Params.model_validate(params), extra=extra)


def test_defaults_are_dropped_and_order_does_not_matter():
    assert canonical_params(TeacherAnswer.Params.model_validate({"n": 1, "temperature": 0.0})) == {}
    assert fp({}) == fp({"n": 1, "temperature": 0.0})
    assert fp({"n": 2, "top_p": 0.9}) == fp({"top_p": 0.9, "n": 2})


def test_changes_that_matter_change_the_fingerprint():
    base = fp({"n": 2})
    assert fp({"n": 3}) != base
    assert fp({"n": 2}, parents=("p1",)) != base
    assert fp({"n": 2}, version=2) != base
    assert fp({"n": 2}, extra={"teacher": {"model": "a"}}) != fp({"n": 2}, extra={"teacher": {"model": "b"}})
