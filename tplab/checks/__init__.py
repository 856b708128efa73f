"""The machinery of the exercises' check cells, in modules named after their lesson
(`lessonNN.py`; a lesson with several separate exercises may have more than one, e.g.
`lesson02.py` and `lesson02_buckets.py`).

Why here and not in the notebooks: a check cell should read as what it checks (a loop over
ranks and cases, and the assertions' targets); how the reference runs and how a wrong answer
is named in the message is reusable code, tested like the rest of the package. The learner's
functions are passed in as arguments. Some checks also take the notebook's globals, to hide the
answer: `forbid.forbidden` makes tplab's answer (lesson 04's sharding plan, lesson 05's schedules
and formulas) raise, under whatever name the notebook or any tplab module holds it, while the
learner's function runs, and puts it back.
"""
