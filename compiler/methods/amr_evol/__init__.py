"""AMR-Evol — adaptive modular response evolution (METHODS.md §2), everything in this folder.

The pipeline of an AMR-Evol recipe, in order (shared stages in brackets):

1. instructions (A0, :mod:`.instructions`): ``self_instruct`` (new tasks from few-shot seed tasks,
   T=0.7) and ``evol_instruct`` (Code Evol-Instruct levels, each row keeping its parent and level),
   then [``dedup``], [``decontaminate``] (n-grams) and optionally [``decontaminate_embed``] (the
   paper's embedding neighbours + judge);
2. the module database (A2, :mod:`.seed`, :mod:`.candidates`): ``seed_modules`` — teacher-written
   functions kept when their own tests pass in the sandbox, and/or a library file
   (:mod:`compiler.moduledb` holds the database itself, shared with ``distillc modules``);
3. the direct answer (A1): [``teacher_answer``] at T=0, [``extract_code``];
4. ``modular_decompose`` (A3, :mod:`.decompose`, :mod:`.specs`): the answer as function specs;
5. ``retrieve_modules`` (A4, :mod:`.retrieve`): the nearest verified modules of each spec by cosine,
   with the recipe's ``embedder`` (:mod:`compiler.embed`);
6. ``evolve_response`` (A5, :mod:`.evolve`, :mod:`.templates`): the refined answer, with an optional
   self-test gate that only labels (:mod:`.selftest`);
7. ``grow_modules`` (A6, :mod:`.grow`): novel, verified functions of the evolved answers join the
   database;
8. [``format``]: (instruction, evolved answer) records, variant ``AMR-Evol``.

The baselines (:mod:`.baselines`): direct (``teacher_answer``), chain of thought (``cot_answer``) and
AnsRepair (``teacher_tests`` then ``repair_answer``); the ablations are recipes (no
``modular_decompose``: ``retrieve_modules`` with ``query: code``; no retrieval: ``evolve_response``
with ``use_modules: false``). :mod:`.funnel` counts what happened for ``distillc show``.
"""

from compiler.methods import Method
from compiler.methods.amr_evol.funnel import amr_funnel, render_funnel

METHOD = Method(
    name="amr_evol",
    title="AMR-Evol",
    summary="direct answers decomposed into function specs, verified modules retrieved, answers evolved",
    funnel=amr_funnel,
    render=render_funnel,
    default_variants=("AMR-Evol",),
)
