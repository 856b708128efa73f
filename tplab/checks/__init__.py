"""The machinery of the exercises' check cells, one module per lesson (`lessonNN.py`).

Why here and not in the notebooks: a check cell should read as what it checks (a loop over
ranks and cases, and the assertions' targets); how the reference runs and how a wrong answer
is named in the message is reusable code, tested like the rest of the package. The learner's
functions are passed in as arguments, so the machinery never reaches into a notebook's names.
"""
