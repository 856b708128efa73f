"""Interview items on data parallelism: DP, DDP, ZeRO, FSDP (lessons 02 and 07), and the source
article's first coding question ported to PyTorch as a spot-the-bug item.

Memory numbers come from `tplab.zero.zero_memory_bytes` (the ZeRO paper's formulas) and times
from `tplab.cost.time.all_reduce_s`.
"""
from tplab.cost.machines import H100
from tplab.cost.model import LLAMA2_70B
from tplab.interview.bugs import source
from tplab.interview.items import Code, Item, Numeric, Option

T = "data_parallel"
ZERO = "tplab.zero.zero_memory_bytes"

ITEMS = (
    Item("dp-16-bytes", T, 1,
         "Plain data parallelism, mixed-precision AdamW (bf16 weights and gradients, fp32 master "
         "weights, momentum and variance), Ψ = 7.5 billion parameters. How many GB of model "
         "state does every GPU hold?",
         "普通数据并行，混合精度 AdamW（bf16 权重和梯度，fp32 主权重、一阶和二阶动量），"
         "参数量 Ψ = 75 亿。每张 GPU 上的模型状态占多少 GB？",
         "numeric",
         "(2 + 2 + 12) bytes per parameter = 16 B × 7.5e9 = 120 GB, on every replica: the "
         "ZeRO paper's baseline. Counting only bf16 weights (15 GB) misses 7/8 of it.",
         "02 §10, 07 §3", wrong_answers=("15", "30", "60"),
         explanation_zh="每个参数 2 + 2 + 12 = 16 字节，16 × 7.5e9 = 120 GB，每个副本都存一份。"
                        "只算 bf16 权重（15 GB）漏掉了 7/8。",
         numeric=Numeric(ZERO, (7.5e9, 64, 0), scale=1e-9, unit="GB")),
    Item("dp-zero1", T, 2,
         "The same 7.5B model on 64 GPUs with ZeRO stage 1 (optimizer states sharded). GB of "
         "model state per GPU?",
         "同一个 75 亿参数模型，64 张 GPU，使用 ZeRO-1（切分优化器状态）。每张 GPU 的模型状态"
         "多少 GB？",
         "numeric",
         "4Ψ + 12Ψ/N = 30 + 1.41 = 31.4 GB (the paper's Figure 1). Weights and gradients are "
         "still replicated.",
         "07 §3", wrong_answers=("120", "16.6", "1.875", "30.9"),  # 30.9: K = 8, not 12
         explanation_zh="4Ψ + 12Ψ/N = 30 + 1.41 = 31.4 GB（论文图 1），权重和梯度仍是每卡一份。",
         numeric=Numeric(ZERO, (7.5e9, 64, 1), scale=1e-9, unit="GB", rtol=0.01)),
    Item("dp-zero3", T, 2,
         "The same 7.5B model on 64 GPUs with ZeRO stage 3 (PyTorch FSDP's FULL_SHARD). GB of "
         "model state per GPU?",
         "同一个 75 亿参数模型，64 张 GPU，使用 ZeRO-3（即 PyTorch FSDP 的 FULL_SHARD）。"
         "每张 GPU 的模型状态多少 GB？",
         "numeric",
         "16Ψ/N = 120 GB / 64 = 1.875 GB: everything is sharded; weights are all-gathered layer "
         "by layer when needed.",
         "07 §3", wrong_answers=("16.6", "31.4", "120"),
         explanation_zh="16Ψ/N = 1.875 GB：全部切分，用到某层时再 all-gather 该层权重。",
         numeric=Numeric(ZERO, (7.5e9, 64, 3), scale=1e-9, unit="GB")),
    Item("dp-zero3-70b", T, 3,
         "Full fine-tuning of Llama-2-70B (68.98B parameters) with mixed-precision AdamW and "
         "ZeRO-3 over the 8 GPUs of one server: GB of model state per GPU (no activations)?",
         "在一台 8 卡服务器上用混合精度 AdamW + ZeRO-3 全参微调 Llama-2-70B（689.8 亿参数）："
         "每张 GPU 的模型状态（不含激活）多少 GB？",
         "numeric",
         "16 × 68.98e9 / 8 = 138 GB per GPU, more than an 80 GB H100 before a single activation: "
         "one server cannot train 70B this way; it needs more GPUs, offload, or LoRA.",
         "07 §6", wrong_answers=("80", "17.2", "1104"),
         explanation_zh="16 × 68.98e9 / 8 = 138 GB/卡，还没算激活就超过 H100 的 80 GB："
                        "单机 8 卡无法这样全参训练 70B，需要更多卡、offload 或 LoRA。",
         numeric=Numeric(ZERO, (LLAMA2_70B.params(), 8, 3), scale=1e-9, unit="GB")),
    Item("dp-grad-all-reduce", T, 3,
         "DDP on 8 H100s in one server (NCCL ring, bus bandwidth 370 GB/s): how many ms does the "
         "all-reduce of a 7B model's bf16 gradients (14 GB) take, if nothing overlaps it?",
         "单机 8 张 H100 做 DDP（NCCL ring，总线带宽 370 GB/s）：7B 模型的 bf16 梯度（14 GB）"
         "做一次 all-reduce 要多少毫秒（不考虑与反向传播重叠）？",
         "numeric",
         "2(n-1)/n·N/B = 1.75 × 14 GB / 370 GB/s = 66 ms (plus microseconds of latency). DDP "
         "hides most of it behind backward by all-reducing buckets as their gradients are ready.",
         "02 §4, §9; 07 §5", wrong_answers=("37.8", "75.7", "6.6"),
         explanation_zh="2(n-1)/n·N/B = 1.75 × 14 GB / 370 GB/s ≈ 66 ms。DDP 按 bucket 在梯度就绪时"
                        "立即 all-reduce，把大部分通信藏在反向传播后面。",
         numeric=Numeric("tplab.cost.time.all_reduce_s", (14e9, 8, H100), scale=1e3, unit="ms",
                         rtol=0.05)),
    Item("dp-average", T, 1,
         "Each rank computes the mean loss over its own shard of the batch. After all-reducing "
         "(summing) the gradients, what must a rank do before the optimizer step?",
         "每个 rank 在自己那份数据上计算平均 loss。对梯度做 all-reduce（求和）之后，优化器更新"
         "之前还必须做什么？",
         "choice",
         "Divide by the world size: the mean of equal shards' mean gradients is the global "
         "batch's mean gradient, so the step equals one process on the whole batch.",
         "02 §2", wrong_answers=("A", "B", "D"), correct="C",
         explanation_zh="除以 world size：各个等大分片的平均梯度再取平均，"
                        "就是整个全局 batch 的平均梯度，因此这一步与单进程跑整个 batch 完全相同。",
         options=(
             Option("nothing: the sum is the gradient", "什么都不用做，和就是梯度",
                    "Wrong: the step would be world-size times too large."),
             Option("broadcast rank 0's gradients", "广播 rank 0 的梯度",
                    "Wrong: that throws away every other shard's data."),
             Option("divide the gradients by the world size", "把梯度除以 world size",
                    "Right: the average of the shards' mean gradients is the global mean."),
             Option("multiply the learning rate by the world size", "把学习率乘以 world size",
                    "Wrong: it makes the summed step even larger."))),
    Item("dp-vs-ddp", T, 2,
         "Why does PyTorch recommend DistributedDataParallel over nn.DataParallel even on one "
         "machine?",
         "为什么即使在单机上，PyTorch 也推荐用 DistributedDataParallel 而不是 nn.DataParallel？",
         "choice",
         "DataParallel is one process driving all GPUs (the GIL, scatter of inputs and replicated "
         "weights every step, outputs gathered on GPU 0); DDP is one process per GPU that "
         "all-reduces gradient buckets while backward still runs.",
         "02 §3, §5", wrong_answers=("A", "B", "C"), correct="D",
         explanation_zh="DataParallel 是一个进程驱动所有 GPU（受 GIL 限制，每步都要分发输入、"
                        "复制权重，输出汇集到 GPU 0）；DDP 每张 GPU 一个进程，"
                        "反向传播还在进行时就对梯度 bucket 做 all-reduce。",
         options=(
             Option("DDP sends fewer bytes of gradients", "DDP 发送的梯度字节更少",
                    "Wrong: both move one model's worth of gradients."),
             Option("DataParallel gives wrong gradients", "DataParallel 的梯度是错的",
                    "Wrong: it is correct, just slow."),
             Option("DDP needs no communication", "DDP 不需要通信",
                    "Wrong: it all-reduces every gradient every step."),
             Option("DDP runs one process per GPU and overlaps bucketed all-reduces with backward",
                    "DDP 每张 GPU 一个进程，并把分桶的 all-reduce 与反向传播重叠",
                    "Right: no GIL, no per-step weight copies, communication hidden."))),
    Item("dp-article-inference", T, 2,
         "The article says data parallelism in inference splits the data, runs forward and "
         "backward on each device, and combines the results. What is right?",
         "原文说：推理中的数据并行是把数据切分，每个设备做前向和反向传播，再汇总结果。"
         "哪种说法正确？",
         "choice",
         "Inference has no backward pass and nothing to average: each replica holds the whole "
         "model and answers its own requests; the only 'combining' is returning answers in "
         "order. It pays off only if the model fits on one device.",
         "02 §1", wrong_answers=("B", "C", "D"), correct="A",
         explanation_zh="推理没有反向传播，也没有要平均的东西：每个副本持有完整模型，"
                        "各自处理自己的请求；唯一的“汇总”就是按顺序返回结果。"
                        "只有模型能放进单个设备时这样做才划算。",
         options=(
             Option("Replicas each run forward on their own inputs; nothing is all-reduced",
                    "每个副本各自对自己的输入做前向，不需要 all-reduce",
                    "Right: serving replicas behind a router."),
             Option("Right as written", "原文说得对",
                    "Wrong: inference computes no gradients."),
             Option("Replicas must all-reduce their outputs", "各副本必须 all-reduce 输出",
                    "Wrong: different inputs' outputs are not summed."),
             Option("It splits the model's layers across devices", "它把模型的层切到不同设备上",
                    "Wrong: that is pipeline (model) parallelism."))),
    Item("dp-article-code", T, 2,
         "The article's coding answer 1, ported to PyTorch: every rank should return the "
         "gradient of the whole batch's mean loss w.r.t. each weight. Fix it so it does.",
         "原文编程题 1 的答案移植到 PyTorch：每个 rank 应返回整个 batch 平均 loss "
         "对每个权重的梯度。请修复代码。",
         "code",
         "Two bugs: the article differentiates the output w.r.t. the input (tf.gradients("
         "output, input)) instead of a loss w.r.t. the weights, and never combines the devices' "
         "gradients. Fix: a loss, grads w.r.t. parameters, all-reduce, divide by world size.",
         "02 (opening), §2",
         wrong_answers=(source("buggy_data_parallel_gradients"),),
         explanation_zh="两个错误：原文对输入求输出的梯度（tf.gradients(output, input)），"
                        "而不是对权重求 loss 的梯度；并且从不汇总各设备的梯度。",
         code=Code("data_parallel_gradients", "buggy_data_parallel_gradients",
                   "fixed_data_parallel_gradients")),
)
