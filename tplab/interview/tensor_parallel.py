"""Interview items on tensor and sequence parallelism (lessons 03, 04, 07 §4): f and g,
column/row, heads, vocabulary, what a rank holds and sends.

Parameter counts come from `tplab.cost.memory.rank_params`, activation bytes from
`tplab.cost.memory.activation_bytes_per_layer` (Korthikanti et al. 2022), per-token
communication from `tplab.cost.time.decode_time`.
"""
from tplab.cost.machines import H100
from tplab.cost.model import LLAMA2_70B
from tplab.interview.items import Item, Numeric, Option

T = "tensor_parallel"

ITEMS = (
    Item("tp-f-g", T, 2,
         "In Megatron's tensor-parallel MLP, what does the operator f (before the column-parallel "
         "layer) do?",
         "Megatron 张量并行 MLP 中，列并行层之前的算子 f 做什么？",
         "choice",
         "f is the identity forward and an all-reduce of the input's gradient backward; g (after "
         "the row-parallel layer) is its mirror: all-reduce forward, identity backward.",
         "03 §2", wrong_answers=("A", "C", "D"), correct="B",
         explanation_zh="f 前向是恒等，反向对输入的梯度做 all-reduce；g（行并行层之后）与之对称："
                        "前向 all-reduce，反向恒等。",
         options=(
             Option("all-reduce forward, identity backward", "前向 all-reduce，反向恒等",
                    "Wrong: that is g."),
             Option("identity forward, all-reduce backward", "前向恒等，反向 all-reduce",
                    "Right: every rank needs the whole input's gradient."),
             Option("all-gather forward, reduce-scatter backward",
                    "前向 all-gather，反向 reduce-scatter",
                    "Wrong: that is sequence parallelism's g-bar."),
             Option("nothing: it exists only for clarity", "什么都不做，只是为了表述清楚",
                    "Wrong: without its backward all-reduce the input gradient is partial."))),
    Item("tp-column-row", T, 2,
         "Why is the first MLP matrix split by columns and the second by rows?",
         "为什么 MLP 的第一个矩阵按列切分、第二个按行切分？",
         "choice",
         "Column-splitting the first gives each rank whole hidden units, so the elementwise "
         "activation needs no communication; the row-split second matrix then yields partial "
         "sums, added by ONE all-reduce per MLP.",
         "03 §1, §3", wrong_answers=("A", "B", "D"), correct="C",
         explanation_zh="第一个矩阵按列切分，每个 rank 得到完整的隐藏单元，逐元素激活无需通信；"
                        "按行切分的第二个矩阵随后产出部分和，每个 MLP 只需一次 all-reduce "
                        "把它们加起来。",
         options=(
             Option("to balance memory", "为了平衡显存", "Wrong: either split balances memory."),
             Option("rows are faster to multiply", "按行切的矩阵乘更快",
                    "Wrong: speed is the same."),
             Option("so the nonlinearity runs locally and one all-reduce finishes the MLP",
                    "这样非线性激活可以本地计算，整个 MLP 只需一次 all-reduce",
                    "Right: column then row, one g."),
             Option("PyTorch requires it", "PyTorch 规定如此", "Wrong: it is a design choice."))),
    Item("tp-all-reduces", T, 2,
         "With Megatron tensor parallelism, how many all-reduces does one transformer layer make "
         "in its forward pass?",
         "使用 Megatron 张量并行时，一个 transformer 层的前向传播做几次 all-reduce？",
         "choice",
         "Two: after attention's output projection and after the MLP (each a g). Backward adds "
         "two more (the f's): four per layer per micro-batch in training.",
         "03 §6, §7", wrong_answers=("A", "B", "C"), correct="D",
         explanation_zh="两次：attention 输出投影之后一次，MLP 之后一次（各是一个 g）。"
                        "反向再加两次（f）：训练时每层每个 micro-batch 共四次。",
         options=(
             Option("one", "1 次", "Wrong: attention and MLP each end in partial sums."),
             Option("four", "4 次", "Wrong: four counts backward too."),
             Option("one per head", "每个头一次", "Wrong: heads are summed in one o-projection."),
             Option("two", "2 次", "Right: one g after attention, one after the MLP."))),
    Item("tp-heads", T, 2,
         "Llama-2-70B has 64 query heads and 8 key/value heads. With TP = 8, what does each rank "
         "hold?",
         "Llama-2-70B 有 64 个 query 头、8 个 KV 头。TP = 8 时每个 rank 持有什么？",
         "choice",
         "Heads are split by KV group: 8 query heads and the 1 KV head they read. With TP = 16 "
         "there are fewer KV heads than ranks, and each KV head is replicated on two ranks.",
         "03 §4, 04 §2", wrong_answers=("B", "C", "D"), correct="A",
         explanation_zh="按 KV 组切分注意力头：每个 rank 持有 8 个 query 头和它们读取的那 1 个 KV "
                        "头。TP = 16 时 KV 头比 rank 少，每个 KV 头要在两个 rank 上各存一份。",
         options=(
             Option("8 query heads and 1 KV head", "8 个 query 头和 1 个 KV 头",
                    "Right: one whole GQA group per rank."),
             Option("64 query heads and 1 KV head", "64 个 query 头和 1 个 KV 头",
                    "Wrong: query heads are split too."),
             Option("8 query heads and all 8 KV heads", "8 个 query 头和全部 8 个 KV 头",
                    "Wrong: a rank only needs its group's KV head."),
             Option("a slice of every head's dimensions", "每个头的一部分维度",
                    "Wrong: softmax needs whole heads."))),
    Item("tp-vocab", T, 3,
         "A vocabulary-parallel head leaves each rank logits for 1/t of the vocabulary. How is "
         "the cross-entropy computed without gathering all logits?",
         "词表并行的输出层让每个 rank 只有 1/t 词表的 logits。如何不 gather 全部 logits 就算出"
         "交叉熵？",
         "choice",
         "All-reduce the max (for stability), then the sum of exp, and the target's logit (held "
         "by one rank, zero elsewhere): a few numbers per token instead of vocab/t logits.",
         "03 §5", wrong_answers=("A", "C", "D"), correct="B",
         explanation_zh="先 all-reduce 最大值（为了数值稳定），再 all-reduce 指数和以及目标 token "
                        "的 logit（只在一个 rank 上，其余 rank 为 0）：每个 token 只传几个数，"
                        "而不是 vocab/t 个 logits。",
         options=(
             Option("each rank computes cross-entropy on its slice and they are averaged",
                    "每个 rank 在自己的分片上算交叉熵再取平均",
                    "Wrong: the softmax normaliser spans the whole vocabulary."),
             Option("all-reduce the max, the sum of exponentials and the target logit",
                    "对最大值、指数和以及目标 logit 做 all-reduce",
                    "Right: scalars per token, not logits."),
             Option("it cannot: logits must be all-gathered", "做不到，必须 all-gather logits",
                    "Wrong: that moves vocab-sized tensors."),
             Option("only rank 0 computes the loss", "只有 rank 0 计算 loss",
                    "Wrong: rank 0 lacks the other slices."))),
    Item("tp-rank-params", T, 1,
         "Llama-2-70B (68.98B parameters) split with TP = 8 (embedding and head vocabulary-"
         "parallel): how many billion parameters does each rank hold?",
         "Llama-2-70B（689.8 亿参数）按 TP = 8 切分（embedding 和输出层按词表并行）："
         "每个 rank 持有多少十亿（B）参数？",
         "numeric",
         "Ψ/t = 68.98 / 8 = 8.62 B parameters, 17.2 GB in bf16.",
         "03 §6, 07 §5", wrong_answers=("69", "17.2", "4.3"),
         explanation_zh="Ψ/t = 68.98 / 8 = 8.62 B 参数，bf16 下 17.2 GB。",
         numeric=Numeric("tplab.cost.memory.rank_params", (LLAMA2_70B, 1, 8), scale=1e-9,
                         unit="B params", rtol=0.01)),
    Item("tp-sp-activations", T, 3,
         "Llama-2-70B, sequence 4096, micro-batch 1, TP = 8 with sequence parallelism, no "
         "recomputation: GB of activations one layer saves for backward on one rank "
         "(Korthikanti et al.)?",
         "Llama-2-70B，序列长度 4096，micro-batch 1，TP = 8 且开启序列并行，不做重计算："
         "一个层在一个 rank 上为反向传播保存多少 GB 激活（Korthikanti 等人的公式）？",
         "numeric",
         "sbh(34 + 5as/h)/t = 0.81 GB; without sequence parallelism the norms' and dropouts' "
         "10·sbh stay replicated: sbh(10 + 24/t + 5as/(ht)) = 1.11 GB.",
         "03 §9, 07 §4", wrong_answers=("1.107", "6.5", "0.1"),
         explanation_zh="sbh(34 + 5as/h)/t ≈ 0.81 GB；不开序列并行时 LayerNorm/dropout 的 10·sbh "
                        "在各 rank 重复，为 1.11 GB。",
         numeric=Numeric("tplab.cost.memory.activation_bytes_per_layer",
                         (LLAMA2_70B, 4096, 1, 8, "none", True), scale=1e-9, unit="GB")),
    Item("tp-sp-traffic", T, 2,
         "Sequence parallelism replaces each tensor-parallel all-reduce by a reduce-scatter and "
         "an all-gather. What happens to the bytes sent?",
         "序列并行把张量并行中的每个 all-reduce 换成 reduce-scatter + all-gather。通信字节数"
         "如何变化？",
         "choice",
         "Unchanged: an all-reduce IS a reduce-scatter plus an all-gather. What changes is that "
         "between them the norms and dropouts run on 1/t of the sequence, so their activations "
         "are split t ways.",
         "07 §4", wrong_answers=("A", "C"), correct="B",
         explanation_zh="不变：all-reduce 本身就是 reduce-scatter + all-gather。"
                        "变化在于两者之间的归一化层和 dropout 只处理 1/t 的序列，"
                        "它们的激活因此切成 t 份。",
         options=(
             Option("doubled", "翻倍", "Wrong: the two halves of one all-reduce."),
             Option("the same", "不变", "Right: measured equal in lesson 07."),
             Option("divided by t", "除以 t", "Wrong: memory is divided, not traffic."))),
    Item("tp-decode-comm", T, 3,
         "Llama-2-70B decoding at batch 1 with TP = 8 on H100s (NCCL on NVLink): how many ms "
         "per token go to the 2 all-reduces per layer (80 layers)?",
         "H100 上 TP = 8 解码 Llama-2-70B，batch 1（NVLink 上的 NCCL）：每个 token 花在每层 "
         "2 次 all-reduce（共 80 层）上的时间是多少毫秒？",
         "numeric",
         "160 all-reduces of 16 KB each are latency-bound: ~10 µs each, 1.6 ms per token, "
         "about 18% of the 9.1 ms token. This is why TP stays inside one NVLink server.",
         "04 §4, 03 §8, 07 §5", wrong_answers=("0", "9.1", "0.16"),
         explanation_zh="160 次 16 KB 的 all-reduce 受延迟限制，每次约 10 µs，每个 token 约 1.6 "
                        "ms，占 9.1 ms 的 18%。所以 TP 只在一台 NVLink 服务器内部做。",
         numeric=Numeric("tplab.cost.time.decode_time", (LLAMA2_70B, 8, H100), pick="comm_s",
                         scale=1e3, unit="ms", rtol=0.05)),
)
