"""Export layout details that the end-to-end export tests do not reach."""

from __future__ import annotations

from compiler.export import variant_dirs, variant_order


def test_variant_directories_are_single_safe_distinct_components():
    dirs = variant_dirs(["PERsD", "a/b", "a_b", "../up", ""])
    assert dirs == {"PERsD": "variants/PERsD", "a/b": "variants/a_b", "a_b": "variants/a_b-2",
                    "../up": "variants/_up", "": "variants/_"}
    assert all(d.count("/") == 1 and ".." not in d for d in dirs.values())


def test_the_default_variant_is_the_first_preferred_one_present():
    assert sorted(["StanD", "InpD", "PERsD", "PERsD-refine"], key=variant_order)[0] == "PERsD"
    assert sorted(["StanD", "InpD", "PERsD-combined", "PERsD"], key=variant_order)[0] == "PERsD-combined"
    assert sorted(["zeta", "alpha"], key=variant_order) == ["alpha", "zeta"]
