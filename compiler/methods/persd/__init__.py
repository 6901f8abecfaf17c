"""PERsD — personalised distillation (METHODS.md §1), everything in this folder.

The pipeline of a PERsD recipe, in order (shared stages in brackets):

1. ``synthesize_tests`` (:mod:`.unit_tests`, :mod:`.oracle`): unit tests for tasks without them —
   the teacher proposes inputs, the reference computes outputs in the sandbox;
2. ``student_attempt`` (:mod:`.attempt`, :mod:`.extract`): the student tries every task with
   PERsD's text-to-code prompt;
3. [``execute``]: the attempt runs against the tests; the first failure becomes feedback text;
4. ``teacher_refine`` (:mod:`.refine`, :mod:`.templates`): only failed attempts go to the teacher,
   in a two-turn chat whose first turn carries the gold solution (the reference, or the teacher's
   own answer with ``gold: teacher``);
5. ``parse_refinement`` / [``execute``] / ``keep_refinements`` (:mod:`.parse`): the rectified code
   is parsed, executed, and kept only when it passes every test;
6. ``emit_persd`` (:mod:`.emit`): the training sets as variants of one corpus (StanD, InpD, PERsD,
   PERsD-refine, PERsD-combined, and the NL-feedback and gold-as-refinement variants);
7. ``persd_rounds`` (:mod:`.rounds`): optional later rounds with updated student checkpoints.

:mod:`.funnel` counts what happened for ``distillc show``.
"""

from compiler.methods import Method
from compiler.methods.persd.funnel import persd_funnel, render_funnel

METHOD = Method(
    name="persd",
    title="PERsD",
    summary="student attempts, execution feedback, teacher refinements of failed attempts only",
    funnel=persd_funnel,
    render=render_funnel,
    default_variants=("PERsD-combined", "PERsD"),
)
