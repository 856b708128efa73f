# the classic confusions: f taken for g, 1F1B shrinking the bubble, decode "quadratic"
choices = {"coll-halves": None, "coll-ring-scaling": None, "tp-f-g": None,
           "pp-1f1b-vs-gpipe": None, "sv-continuous-batching": None, "mt-memory-bound": None}
choices.update({"coll-halves": "A", "coll-ring-scaling": "B", "tp-f-g": "A",
                "pp-1f1b-vs-gpipe": "A", "sv-continuous-batching": "B",
                "mt-memory-bound": "B"})
