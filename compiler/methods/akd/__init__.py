"""AKD — adaptive knowledge distillation for lightweight code models (METHODS.md §4), the corpus side.

AKD distils with the teacher's logits, so most of it happens at training time
(``distillc train --method kd``, ``trainers/akd.py`` and the losses in ``trainers/losses.py``). The
compiler prepares what that training consumes:

1. ``akd_teacher`` (:mod:`.teacher`, :mod:`.templates`): the teacher answers every task under a
   task-explicit prompt (``enhanced``; or ``plain``, or a template file), in completion style for a
   base teacher or as a chat message; each answer keeps the teacher-side and the student-side
   prompts and, with ``top_logprobs``, the teacher's top-k log-probabilities per generated token;
2. ``akd_filter`` (:mod:`.filter`): the light filter — code present, and ``ast`` parses it;
3. [``dedup``]: the shared deduplication;
4. ``emit_akd`` (:mod:`.emit`): the KD records (variant ``AKD``): ``prompt``/``completion`` plus
   ``teacher_prompt`` and ``teacher_topk``.

:mod:`.funnel` counts what happened for ``distillc show``.
"""

from compiler.methods import Method
from compiler.methods.akd.funnel import akd_funnel, render_funnel

METHOD = Method(
    name="akd",
    title="AKD",
    summary="teacher answers under a task-explicit prompt, kept with both prompts (and top-k logprobs) "
            "for distillation from the teacher's logits",
    funnel=akd_funnel,
    render=render_funnel,
    default_variants=("AKD",),
)
