# contiguous blocks from numpy array_split (3, 2, 2 for 7 jobs on 3) instead of ceil(n/w) blocks (3, 3, 1)
import math

import numpy as np

# (i) classes = {"chat_replicas": ..., ...}: "data", "model" or "task" for every scenario key
# (ii) by_hand = {"contiguous": ..., "round-robin": ..., "dynamic": ..., "lower_bound": ...}
#      for JOBS on WORKERS, worked out on paper; makespans(lengths, workers) -> the same dict
classes = {
    "chat_replicas": "task",   # each request served whole by one replica; GPUs exchange nothing
    "layers_70b": "model",     # the weights are split (by layers: pipeline); activations move
    "matmul_columns": "model",  # one matrix's weights split (tensor parallel); outputs gathered
    "grad_average": "data",    # shards of one step's batch, whole model each, gradients combined
    "lr_sweep": "task",        # 20 separate runs, own weights and batches; never combined
    "moe_experts": "model",    # each GPU holds one expert's weights: tokens travel to the weights
    "ray_files": "task",       # independent files, nothing combined or communicated: scheduling
    "imagenet_hour": "data",   # one iteration's minibatch split, gradients all-reduced each step
}
by_hand = {"contiguous": 18,   # blocks [7, 2, 9] [4, 2] [5, 6]: 18, 6, 11
           "round-robin": 17,  # jobs 0, 3, 6: 7 + 4 + 6; jobs 1, 4: 4; jobs 2, 5: 14
           "dynamic": 14,      # 7|2|9 at 0; 4 at 2 (to 6); 2 at 6 (to 8); 5 at 7; 6 at 8 -> 14
           "lower_bound": 12}  # max(9, ceil(35 / 3) = 12)


def makespans(lengths, workers):
    contiguous = max(int(sum(block)) for block in np.array_split(lengths, workers))
    round_robin = max(sum(lengths[w::workers]) for w in range(workers))
    free = [0] * workers
    for length in lengths:                         # FIFO: in the order given, to the first free
        free[free.index(min(free))] += length
    return {"contiguous": contiguous, "round-robin": round_robin, "dynamic": max(free),
            "lower_bound": max(max(lengths), -(-sum(lengths) // workers))}
