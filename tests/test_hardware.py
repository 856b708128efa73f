"""tplab.hardware: figures quoted two ways agree, and every figure names its source."""
import ast
import inspect
import math

from tplab import hardware as hw


def test_pairs_quoted_two_ways_agree():
    # each pair is written out as its source prints it; an edit to one side must follow the other
    assert hw.IB_NDR_BITS_PER_S / 8 == hw.IB_NDR_BYTES_PER_S
    assert hw.NVLINK4_BIDIRECTIONAL_BYTES_PER_S / 2 == hw.NVLINK4_BYTES_PER_S
    assert hw.NVLINK3_BIDIRECTIONAL_BYTES_PER_S / 2 == hw.NVLINK3_BYTES_PER_S
    pcie = hw.PCIE5_TRANSFERS_PER_S * hw.PCIE5_LANES * hw.PCIE5_ENCODING / 8
    assert math.isclose(pcie, hw.PCIE5_X16_BYTES_PER_S, rel_tol=0.005)


def test_every_figure_has_a_source_comment():
    # above each constant (past the constants of the same group) a comment names its source
    lines = inspect.getsource(hw).splitlines()
    constants = [node for node in ast.parse("\n".join(lines)).body
                 if isinstance(node, ast.Assign) and node.targets[0].id != "__all__"]
    assert {node.targets[0].id for node in constants} == set(hw.__all__)
    for node in constants:
        i = node.lineno - 2
        while lines[i] and not lines[i].startswith("#"):      # the group's earlier constants
            i -= 1
        comment = []
        while lines[i].startswith("#") and not lines[i].startswith("# ---"):
            comment.append(lines[i])
            i -= 1
        assert any("source:" in line for line in comment), (
            f"{node.targets[0].id} has no '# source: ...' comment above it")
