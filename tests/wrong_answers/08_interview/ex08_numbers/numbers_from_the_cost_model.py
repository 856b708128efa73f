# calling the library's own answer: every number computed by the functions the bank's items name (tplab.cost, tplab.zero, tplab.pp)
from tplab.cost.machines import H100
from tplab.cost.memory import decode_memory
from tplab.cost.model import LLAMA2_70B
from tplab.cost.time import all_reduce_s, decode_time
from tplab.pp.bubble import bubble
from tplab.zero import zero_memory_bytes

answers = {"dp-grad-all-reduce": None, "dp-zero3-70b": None, "tp-decode-comm": None,
           "pp-bubble": None, "mt-kv-batch": None, "mt-decode-ms": None}
answers["dp-grad-all-reduce"] = all_reduce_s(14e9, 8, H100) * 1e3
answers["dp-zero3-70b"] = zero_memory_bytes(68976648192, 8, 3) / 1e9
answers["tp-decode-comm"] = decode_time(LLAMA2_70B, 8, H100)["comm_s"] * 1e3
answers["pp-bubble"] = bubble(4, 8)
answers["mt-kv-batch"] = decode_memory(LLAMA2_70B, 8, 1, 16, 4096)["kv_cache"] / 1e9
answers["mt-decode-ms"] = decode_time(LLAMA2_70B, 8, H100)["ms_per_token"]
