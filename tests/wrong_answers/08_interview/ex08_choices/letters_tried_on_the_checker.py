# calling the library's own answer: each letter found by trying A-D on the bank's checker
from tplab.interview import by_id

choices = {"coll-halves": None, "coll-ring-scaling": None, "tp-f-g": None,
           "pp-1f1b-vs-gpipe": None, "sv-continuous-batching": None, "mt-memory-bound": None}
for key in choices:
    choices[key] = next(letter for letter in "ABCD" if by_id(key).check(letter))
