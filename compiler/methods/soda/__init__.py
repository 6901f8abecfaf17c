"""SODA — self-paced knowledge distillation (METHODS.md §3), everything in this folder.

The pipeline of a SODA recipe, in order, one cycle at a time (shared stages in brackets):

0. [``decontaminate``] the seed questions, then ``soda_seeds`` (:mod:`.questions`): each task becomes
   a question row of cycle 1;
1. correct-and-fault knowledge: ``teacher_correct`` and ``teacher_faulty`` (:mod:`.teacher`,
   prompts A and B of :mod:`.templates`), both answers checked (``static_check``, :mod:`.static_check`)
   and graded (``judge``, :mod:`.judge`, parsed by :mod:`.parse`), then ``pair`` (:mod:`.pair`): which
   pairs are kept, and the error types of their faulty answers;
2. multi-view feedback: ``student_answer`` (:mod:`.student`), then ``static_check`` and ``judge`` on
   its answer, and ``pass_rate`` (k samples against the task's tests, when it has some);
3. feedback-based knowledge update: ``tier`` (:mod:`.tier`, rules written in the recipe) and
   ``new_questions`` (:mod:`.new_questions`, prompts C and D, deduplicated and decontaminated);
4. ``soda_cycles`` (:mod:`.cycles`): the later cycles, each on the previous cycle's new questions,
   with a student checkpoint per cycle;
5. ``emit_soda`` (:mod:`.emit`): the preference pairs (``SODA``) and the correct answers
   (``SODA-sft``) as variants of one corpus, for ``distillc train --method dpo`` and ``--method sft``.

:mod:`.funnel` counts what happened per cycle for ``distillc show``.
"""

from compiler.methods import Method
from compiler.methods.soda.funnel import render_funnel, soda_funnel

METHOD = Method(
    name="soda",
    title="SODA",
    summary="correct and faulty teacher answers, multi-view feedback on the student, difficulty tiers, "
            "new questions per tier, in cycles",
    funnel=soda_funnel,
    render=render_funnel,
    default_variants=("SODA", "SODA-sft"),
)
