# forbidden shortcut: f and g written as empty subclasses of tplab.tp's own (their forward and backward are tplab's)
from tplab.tp.ops import _CopyToParallel, _ReduceFromParallel


class CopyToParallel(_CopyToParallel):
    pass


class ReduceFromParallel(_ReduceFromParallel):
    pass


def parallel_mlp(x, gate_w, up_w, down_w):
    x = CopyToParallel.apply(x, None)
    a = F.silu(F.linear(x, gate_w)) * F.linear(x, up_w)
    return ReduceFromParallel.apply(F.linear(a, down_w), None)
