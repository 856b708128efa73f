"""Interview items on memory and time at scale (lessons 04 and 07): parameter counts, the KV
cache, 70B on 8×H100, why decoding is memory-bound.

Every number is computed by `tplab.cost` (ModelShape, decode_memory, decode_time), the cost
model lesson 07 validates against published ZeRO, gpt-fast and NeMo figures.
"""
from tplab.cost.machines import H100
from tplab.cost.model import LLAMA2_70B
from tplab.interview.items import Item, Numeric, Option

T = "memory_time"
SHAPE = "tplab.cost.model.ModelShape"
DECODE_MEMORY = "tplab.cost.memory.decode_memory"

ITEMS = (
    Item("mt-params-70b", T, 1,
         "Llama-2-70B: 80 layers, hidden 8192, 64 query heads, 8 KV heads, SwiGLU FFN 28672, "
         "vocabulary 32000, untied head. How many billion parameters, exactly to 1%?",
         "Llama-2-70B：80 层，hidden 8192，64 个 query 头，8 个 KV 头，SwiGLU FFN 28672，词表 "
         "32000，输出层与 embedding 不共享。参数量精确到 1% 是多少十亿（B）？",
         "numeric",
         "Per layer: q, o 2h² + k, v 2·h·(kv·d) + MLP 3·h·ffn = 855.6M; ×80 = 68.45B, plus "
         "embedding and head 2·32000·8192 = 0.52B: 68.98B. '70B' is a name, not a count.",
         "07 §5", wrong_answers=("70", "65", "175"),
         explanation_zh="每层 q、o 为 2h²，k、v 为 2·h·(kv·d)，MLP 为 3·h·ffn，合计 8.556 亿；"
                        "×80 = 684.5 亿，加上 embedding 和输出层 5.2 亿，共 689.8 亿。"
                        "“70B”只是名字。",
         numeric=Numeric(f"{SHAPE}.params", (LLAMA2_70B,), scale=1e-9, unit="B params",
                         rtol=0.01)),
    Item("mt-kv-per-token", T, 2,
         "Llama-2-70B in bf16 (80 layers, 8 KV heads of dimension 128): how many MB of KV cache "
         "does one token take?",
         "bf16 的 Llama-2-70B（80 层，8 个 KV 头，头维度 128）：每个 token 的 KV cache 占多少 MB？",
         "numeric",
         "2 (K and V) × 80 layers × 8 heads × 128 × 2 bytes = 327,680 B = 0.33 MB. Without "
         "grouped-query attention (64 KV heads) it would be 8× more, 2.6 MB.",
         "04 §5, 07 §5", wrong_answers=("2.62", "0.164", "1"),
         explanation_zh="2（K 和 V）× 80 层 × 8 头 × 128 × 2 字节 = 0.33 MB；若不用 GQA（64 个 KV "
                        "头）则是 8 倍，2.6 MB。",
         numeric=Numeric(f"{SHAPE}.kv_bytes_per_token", (LLAMA2_70B,), scale=1e-6, unit="MB")),
    Item("mt-kv-batch", T, 2,
         "Llama-2-70B, TP = 8 (one KV head per rank), batch 16 sequences of 4096 tokens: GB of "
         "KV cache per GPU?",
         "Llama-2-70B，TP = 8（每个 rank 一个 KV 头），batch 16 个序列、每个 4096 token："
         "每张 GPU 的 KV cache 多少 GB？",
         "numeric",
         "0.33 MB × 16 × 4096 = 21.5 GB in all, split by KV head over 8 ranks: 2.7 GB per GPU.",
         "04 §5, 07 §6", wrong_answers=("21.5", "1.34", "0.33"),
         explanation_zh="0.33 MB × 16 × 4096 = 21.5 GB，按 KV 头切到 8 个 rank：每卡 2.7 GB。",
         numeric=Numeric(DECODE_MEMORY, (LLAMA2_70B, 8, 1, 16, 4096), pick="kv_cache",
                         scale=1e-9, unit="GB")),
    Item("mt-weights-tp8", T, 1,
         "Llama-2-70B in bf16 served with TP = 8: GB of weights per GPU?",
         "bf16 的 Llama-2-70B 以 TP = 8 部署：每张 GPU 的权重多少 GB？",
         "numeric",
         "68.98e9 × 2 B / 8 = 17.2 GB, leaving ~60 GB of an 80 GB H100 for the KV cache.",
         "04 §3, 07 §6", wrong_answers=("140", "8.6", "35"),
         explanation_zh="68.98e9 × 2 B / 8 = 17.2 GB，80 GB 的 H100 还剩约 60 GB 给 KV cache。",
         numeric=Numeric(DECODE_MEMORY, (LLAMA2_70B, 8, 1, 1, 4096), pick="weights",
                         scale=1e-9, unit="GB")),
    Item("mt-one-gpu", T, 2,
         "Could Llama-2-70B in bf16 decode on ONE 80 GB H100? Give the GB it needs at batch 1 "
         "with 4096 tokens of context.",
         "bf16 的 Llama-2-70B 能在一张 80 GB 的 H100 上解码吗？给出 batch 1、上下文 4096 token "
         "时所需的 GB 数。",
         "numeric",
         "138 GB of weights + 1.3 GB of KV cache = 139 GB: it does not fit; it needs at least "
         "2 GPUs (in practice 4 or 8 for the KV cache of a real batch) or a 4-bit quantization.",
         "07 §6", wrong_answers=("70", "80", "35"),
         explanation_zh="138 GB 权重 + 1.3 GB KV cache = 139 GB，放不下；至少需要 2 张卡"
                        "（实际为了 batch 的 KV cache 用 4 或 8 张），或 4-bit 量化。",
         numeric=Numeric(DECODE_MEMORY, (LLAMA2_70B, 1, 1, 1, 4096), pick="total",
                         scale=1e-9, unit="GB")),
    Item("mt-decode-ms", T, 3,
         "Llama-2-70B decode, batch 1, TP = 8 on H100s (3.35 TB/s HBM at ~68% achieved, NCCL "
         "on NVLink): predicted ms per token?",
         "H100 上 TP = 8 解码 Llama-2-70B，batch 1（HBM 3.35 TB/s，实际约达 68%，NVLink 上的 "
         "NCCL）：预测每个 token 多少毫秒？",
         "numeric",
         "Memory-bound: 17.2 GB per GPU / (3.35 TB/s × 0.685) = 7.5 ms, plus 1.6 ms of 160 "
         "latency-bound all-reduces: 9.1 ms (~110 tokens/s). Compute is only 0.03 ms.",
         "04 §5, 07 §5", wrong_answers=("0.035", "5.1", "1.6"),
         explanation_zh="受显存带宽限制：每卡 17.2 GB / (3.35 TB/s × 0.685) = 7.5 ms，加上 160 次"
                        "all-reduce 的 1.6 ms，共 9.1 ms（约 110 token/s）；计算只要 0.03 ms。",
         numeric=Numeric("tplab.cost.time.decode_time", (LLAMA2_70B, 8, H100),
                         pick="ms_per_token", unit="ms", rtol=0.05)),
    Item("mt-flops-per-token", T, 2,
         "Training Llama-2-70B with sequences of 4096: GFLOPs per token (6Ψ for the matrix "
         "products plus the attention scores, as Megatron counts them)?",
         "训练 Llama-2-70B，序列长度 4096：每个 token 多少 GFLOPs（矩阵乘 6Ψ 加上注意力分数部分，"
         "按 Megatron 的算法）？",
         "numeric",
         "6 × 68.71e9 (all but the embedding lookup) + 12·L·h·s = 412.3 + 32.2 = 444 GFLOPs. "
         "6Ψ alone (414) forgets the attention scores; 2Ψ is a forward alone.",
         "07 §5", wrong_answers=("138", "414", "400", "32"),
         explanation_zh="6 × 687.1 亿（不含 embedding 查表）+ 12·L·h·s = 412.3 + 32.2 ≈ 444 "
                        "GFLOPs；2Ψ 只是前向。",
         numeric=Numeric(f"{SHAPE}.flops_per_token", (LLAMA2_70B, 4096), scale=1e-9,
                         unit="GFLOPs")),
    Item("mt-memory-bound", T, 2,
         "Why is decoding one token at batch 1 memory-bound on a GPU?",
         "为什么 batch 1 时解码一个 token 在 GPU 上是受显存带宽限制（memory-bound）的？",
         "choice",
         "Every weight is read once to do 2 FLOPs with it (≈1 FLOP per byte in bf16), while an "
         "H100 needs ~300 FLOPs per byte read to be compute-bound. Batching reuses each weight "
         "read for many sequences.",
         "04 §4, §5", wrong_answers=("A", "B", "D"), correct="C",
         explanation_zh="每个权重读一次只做 2 次浮点运算（bf16 下约 1 FLOP/字节），"
                        "而 H100 每读 1 字节要做约 300 FLOPs 才会受算力限制（compute-bound）。"
                        "批处理让每次读入的权重被多个序列复用。",
         options=(
             Option("the KV cache is too large to fit", "KV cache 太大放不下",
                    "Wrong: a fit problem, not a speed one."),
             Option("attention is quadratic", "注意力是平方复杂度",
                    "Wrong: one new token attends linearly."),
             Option("each weight is read once per token for ~2 FLOPs: intensity ~1 FLOP/byte",
                    "每个权重每个 token 读一次、只做约 2 次浮点运算：算术强度约 1 FLOP/字节",
                    "Right: far below the ~300 FLOP/byte ridge."),
             Option("GPUs are slow at bf16", "GPU 的 bf16 算力低",
                    "Wrong: ~1 PFLOP/s of bf16 sits idle."))),
    Item("mt-70b-training", T, 3,
         "Can you fully fine-tune Llama-2-70B (mixed-precision AdamW) on one server of 8 H100-"
         "80GB?",
         "能否在一台 8×H100-80GB 服务器上用混合精度 AdamW 全参微调 Llama-2-70B？",
         "choice",
         "No: 16 B per parameter is 1.1 TB of model state against 640 GB of HBM; even fully "
         "sharded (ZeRO-3 or TP·PP = 8) it is 138 GB per GPU before activations. It takes more "
         "servers, CPU/NVMe offload, or parameter-efficient fine-tuning.",
         "07 §6", wrong_answers=("A", "B", "C"), correct="D",
         explanation_zh="不能：每个参数 16 字节，模型状态共 1.1 TB，而 HBM 总共只有 640 GB；"
                        "即使完全切分（ZeRO-3 或 TP·PP = 8），不算激活每卡也要 138 GB。"
                        "需要更多服务器、CPU/NVMe offload，或参数高效微调。",
         options=(
             Option("yes, with DDP", "可以，用 DDP", "Wrong: DDP replicates all 1.1 TB."),
             Option("yes, with ZeRO-3", "可以，用 ZeRO-3", "Wrong: still 138 GB per GPU."),
             Option("yes, with TP = 8", "可以，用 TP = 8",
                    "Wrong: TP divides the same 1.1 TB by 8 as ZeRO-3 does."),
             Option("no: 1.1 TB of state, 138 GB per GPU even fully sharded",
                    "不能：模型状态 1.1 TB，完全切分后每卡仍需 138 GB",
                    "Right: memory, not time, rules it out."))),
)
