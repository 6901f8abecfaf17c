"""The engine tests use the compile-level fixtures: the loopback teacher, recipes on the fly, a store."""

from tests.compiler.conftest import _api_key, make_recipe, store, teacher_server  # noqa: F401
