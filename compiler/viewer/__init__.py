"""``distillc view``: a local, read-only web app over a store.

- :mod:`.queries`: the read-only queries (corpora, a version's rows searched and filtered in SQL, one
  row's lineage and its LLM calls), usable without HTTP;
- :mod:`.access`: the store attached read-only only while requests read it;
- :mod:`.app`: the Starlette app (pages from ``templates/``, JSON under ``/api``);
- :mod:`.render`: how stored values are shown.

The command is ``compiler/commands/view.py``.
"""
