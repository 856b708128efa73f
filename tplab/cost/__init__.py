"""The cost model: memory and time of a (dp, pp, tp) layout, validated here and against print.

    model.py     ModelShape: Llama-2-70B, Llama-2-7B, SmolLM2-135M as integers; parameter counts
    machines.py  Hardware rows (A100 at 330 W, H100) and the model's two cited efficiencies
    memory.py    bytes per GPU: ZeRO model state, Korthikanti activations, KV cache
    time.py      seconds: roofline compute/memory, α–β collectives, pipeline bubble
    validate.py  published cases: ZeRO paper, gpt-fast 70B decode, NeMo 70B training
    measure.py   this machine fitted (FLOP/s, bandwidth, AdamW, α–β of shm and gloo)
    here.py      this machine's runs (TP decode, DDP, PP, ZeRO-1) beside their predictions
    plan.py      Llama-2-70B on 8×H100: every (tp, pp, dp), what fits, the best and why;
                 and the smallest cluster (8..64 GPUs) that trains it

`tplab.comm.cost` (the α–β formulas) and `tplab.hardware` (peaks) stay where they are.
"""
from tplab.cost.machines import A100_330W, H100, Hardware
from tplab.cost.memory import decode_memory, rank_params, training_memory
from tplab.cost.model import LLAMA2_7B, LLAMA2_70B, SMOLLM2_135M, ModelShape
from tplab.cost.plan import best, factorizations, plan_clusters, plan_decode, plan_training
from tplab.cost.time import all_reduce_s, decode_time, training_step_time
from tplab.cost.validate import published_cases

__all__ = ["A100_330W", "H100", "Hardware", "decode_memory", "rank_params", "training_memory",
           "LLAMA2_7B", "LLAMA2_70B", "SMOLLM2_135M", "ModelShape", "best", "factorizations",
           "plan_clusters", "plan_decode", "plan_training", "all_reduce_s", "decode_time",
           "training_step_time", "published_cases"]
