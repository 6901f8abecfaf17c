"""Every recipe field, stage and stage param is documented in recipes/README.md."""

from __future__ import annotations

from compiler.docs import BEGIN, END, README, SECTIONS, refresh
from compiler.stages import load_all


def test_reference_is_up_to_date():
    text = README.read_text(encoding="utf-8")
    assert BEGIN in text and END in text
    assert refresh(text) == text, "recipes/README.md is stale: run `python -m compiler.docs --write`"


def test_every_field_stage_and_param_appears():
    text = README.read_text(encoding="utf-8")
    for _, model in SECTIONS:
        for name, field in model.model_fields.items():
            assert f"| `{field.alias or name}` |" in text
            assert field.description, f"{model.__name__}.{name} has no description"
    for name, cls in load_all().items():
        section = text.split(f"### `{name}`", 1)
        assert len(section) == 2, f"stage {name} undocumented"
        body = section[1].split("\n### ", 1)[0]
        for pname, field in cls.Params.model_fields.items():
            assert f"| `{pname}` |" in body, f"{name}.{pname} undocumented"
            assert field.description, f"{name}.{pname} has no description"
        assert (cls.__doc__ or "").strip(), f"stage {name} has no docstring"
