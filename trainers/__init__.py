"""Thin TRL trainers over exported distillc datasets (they read datasets and model directories by
path and import nothing from ``compiler``). ``trainers.sft`` is the SFT trainer; see README.md here."""
