"""Real ranks from a notebook cell: start them, supervise them, report what went wrong.

    launcher.py  `launch`: the parent side (rendezvous store, deadline, results, cleanup)
    start.py     how ranks come to exist: fork where safe, else a clean fork server
    child.py     what one rank does, from start to exit
    errors.py    `WorkerError`: the rank that failed first, or where stuck ranks were
"""
from tplab.ranks.errors import WorkerError
from tplab.ranks.launcher import launch, pick_backend

__all__ = ["launch", "WorkerError", "pick_backend"]
