"""Real ranks from a notebook cell: start them, supervise them, report what went wrong.

    launcher.py  `launch`: the parent side (rendezvous store, deadline, results, cleanup)
    start.py     how ranks come to exist: fork where safe, else a clean fork server
    child.py     what one rank does, from start to exit
    lifecycle.py a child process's life, rank or serving worker: own process group, dies with
                 its parent, stack dump on SIGUSR1, killed with all it started
    output.py    a rank's stdout/stderr files, replayed in rank order; a stuck rank's stack dump
    errors.py    `WorkerError`: the rank that failed first, or where stuck ranks were
    torchrun.py  `launch` under torchrun: this process is one rank, run the function here

Imports go one way (no cycle): launcher uses all the others; start and torchrun use child;
child uses lifecycle, errors and output; lifecycle and errors use output; output uses none.
"""
from tplab.ranks.child import loopback_interface
from tplab.ranks.errors import WorkerError
from tplab.ranks.launcher import launch, pick_backend

__all__ = ["launch", "WorkerError", "pick_backend", "loopback_interface"]
