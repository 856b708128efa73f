"""Lesson 07's 3D run: a small Llama trained on a dp × pp × tp grid of real ranks.

    model.py    the model from `tplab.layers`; this rank's piece of it (stage, tp slices)
    train.py    train_3d (one rank of the grid) and train_reference (one process): equal
    traffic.py  each group's calls and bytes, traced (trace_by_group) and by formula

The grid itself (which rank sits where, its three groups) is `tplab.mesh`.
"""
from tplab.grid3d.model import TINY, Config, Stage, dense_model, gather_parameters, rank_stage
from tplab.grid3d.traffic import expected_bytes, expected_traffic, shard_numel, trace_by_group
from tplab.grid3d.train import next_token_loss, token_batch, train_3d, train_reference

__all__ = ["Config", "TINY", "Stage", "dense_model", "rank_stage", "gather_parameters",
           "train_3d", "train_reference", "token_batch", "next_token_loss", "trace_by_group",
           "expected_traffic", "expected_bytes", "shard_numel"]
