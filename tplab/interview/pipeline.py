"""Interview items on pipeline parallelism (lesson 05): the bubble, 1F1B's memory, interleaving,
and the source article's "model parallel" coding answer ported as a spot-the-bug item.

Bubbles and activations in flight come from `tplab.pp.bubble` (`bubble`, `inflight_formula`),
whose closed forms lesson 05 measures on a clock.
"""
from tplab.interview.bugs import source
from tplab.interview.items import Code, Item, Numeric, Option

T = "pipeline"
BUBBLE = "tplab.pp.bubble.bubble"
INFLIGHT = "tplab.pp.bubble.inflight_formula"

ITEMS = (
    Item("pp-bubble", T, 1,
         "A pipeline of p = 4 equal stages runs m = 8 micro-batches (GPipe or 1F1B). What share "
         "of the step is each rank idle (the bubble, as a fraction of the step)?",
         "p = 4 个均等 stage 的流水线，跑 m = 8 个 micro-batch（GPipe 或 1F1B）。每个 rank 空闲"
         "时间占整个 step 的比例（bubble，占 step 的份额）是多少？",
         "numeric",
         "(p-1)/(m+p-1) = 3/11 = 0.273 of the step. The other convention, idle over the ideal "
         "time, gives (p-1)/m = 0.375: always say which one you mean.",
         "05 §5", wrong_answers=("0.375", "0.5", "0.75"),
         explanation_zh="(p-1)/(m+p-1) = 3/11 ≈ 0.273。另一种口径（空闲/理想时间）是 (p-1)/m = "
                        "0.375，回答时要说明用的是哪种。",
         numeric=Numeric(BUBBLE, (4, 8), unit="of the step")),
    Item("pp-bubble-ideal", T, 2,
         "p = 8 stages, m = 32 micro-batches: the bubble as a fraction of the IDEAL compute time "
         "(Narayanan et al.'s convention)?",
         "p = 8 个 stage、m = 32 个 micro-batch：bubble 占理想计算时间的比例（Narayanan "
         "等人的口径）是多少？",
         "numeric",
         "(p-1)/m = 7/32 = 0.219. As a share of the whole step it would be 7/39 = 0.179.",
         "05 §5", wrong_answers=("0.179", "0.25", "0.875"),
         explanation_zh="(p-1)/m = 7/32 ≈ 0.219；若按占整个 step 的份额则是 7/39 ≈ 0.179。",
         numeric=Numeric(BUBBLE, (8, 32), (("convention", "ideal"),), unit="of ideal")),
    Item("pp-interleaved", T, 2,
         "p = 4 ranks, m = 8 micro-batches, interleaved 1F1B with v = 2 model chunks per rank: "
         "the bubble as a fraction of the step?",
         "p = 4 个 rank，m = 8 个 micro-batch，交错式（interleaved）1F1B，每个 rank v = 2 "
         "个模型块：bubble 占 step 的比例是多少？",
         "numeric",
         "(p-1)/(v·m + p-1) = 3/19 = 0.158: each slot is 1/v as long while the p-1 fill and "
         "drain slots stay; the price is v times more point-to-point messages.",
         "05 §5", wrong_answers=("0.273", "0.1875", "0.136"),
         explanation_zh="(p-1)/(v·m + p-1) = 3/19 ≈ 0.158：每个时隙缩短为 1/v，"
                        "填充/排空时隙数不变；代价是点对点通信次数变为 v 倍。",
         numeric=Numeric(BUBBLE, (4, 8, 2), unit="of the step")),
    Item("pp-1f1b-memory", T, 2,
         "1F1B schedule, p = 4 stages, m = 8 micro-batches: at most how many micro-batches' "
         "activations does the FIRST stage hold at once?",
         "1F1B 调度，p = 4 个 stage，m = 8 个 micro-batch：第一个 stage 同时最多保存多少个 "
         "micro-batch 的激活？",
         "numeric",
         "min(p - rank, m) = 4: 1F1B starts each backward as soon as it can, so stage 0 holds p "
         "micro-batches, not m as GPipe does. The bubble is the same as GPipe's.",
         "05 §6", wrong_answers=("8", "1", "3"),
         explanation_zh="min(p - rank, m) = 4：1F1B 尽早开始反向，第一个 stage 最多保存 p 个，"
                        "而 GPipe 要保存全部 m 个；两者 bubble 相同。",
         numeric=Numeric(INFLIGHT, ("1f1b", 4, 8, 0), unit="micro-batches", rtol=0.01)),
    Item("pp-gpipe-memory", T, 1,
         "GPipe schedule (all forwards, then all backwards), p = 4, m = 8: how many "
         "micro-batches' activations does a stage hold at its peak?",
         "GPipe 调度（先全部前向，再全部反向），p = 4，m = 8：一个 stage 峰值时保存多少个 "
         "micro-batch 的激活？",
         "numeric",
         "All m = 8: every forward finishes before the first backward frees anything.",
         "05 §6", wrong_answers=("4", "1", "32"),
         explanation_zh="全部 m = 8 个：所有前向做完之前没有任何反向释放激活。",
         numeric=Numeric(INFLIGHT, ("gpipe", 4, 8, 0), unit="micro-batches", rtol=0.01)),
    Item("pp-1f1b-vs-gpipe", T, 2,
         "What does 1F1B improve over GPipe, with the same p and m?",
         "在 p 和 m 相同时，1F1B 相比 GPipe 改进了什么？",
         "choice",
         "Peak activation memory (p micro-batches in flight instead of m); the bubble "
         "(p-1)/(m+p-1) is unchanged. Interleaving is what shrinks the bubble.",
         "05 §5, §6", wrong_answers=("A", "B", "C"), correct="D",
         explanation_zh="改进的是激活的峰值显存（同时在途的是 p 个 micro-batch，而不是 m 个）；"
                        "bubble (p-1)/(m+p-1) 不变。缩小 bubble 要靠交错式调度（interleaving）。",
         options=(
             Option("the bubble", "bubble", "Wrong: same fill and drain."),
             Option("communication volume", "通信量", "Wrong: the same activations move."),
             Option("the number of stages needed", "所需 stage 数",
                    "Wrong: p is a choice, not a result."),
             Option("peak activation memory", "激活的峰值显存",
                    "Right: min(p, m) micro-batches in flight, not m."))),
    Item("pp-article-model-parallel", T, 2,
         "The article's 'model parallel' splits a model across GPUs and feeds one whole batch "
         "through. With p stages and no micro-batches, how busy is each GPU?",
         "原文的“模型并行”把模型切到多张 GPU 上，然后整个 batch 一次性送进去。p 个 stage 且不切 "
         "micro-batch 时，每张 GPU 的利用率如何？",
         "choice",
         "One stage works at a time: each GPU is busy 1/p of the step. It saves memory, not "
         "time; micro-batches (a pipeline) let stages overlap, leaving only the bubble.",
         "05 (opening), §3", wrong_answers=("B", "C"), correct="A",
         explanation_zh="同一时刻只有一个 stage 在工作：每张 GPU 只有 1/p 的时间在忙。"
                        "这样省的是显存而不是时间；切成 micro-batch（即流水线）"
                        "才能让各 stage 重叠执行，只剩下 bubble。",
         options=(
             Option("each busy about 1/p of the time", "每张 GPU 只有约 1/p 的时间在工作",
                    "Right: stages run one after another."),
             Option("all GPUs busy all the time", "所有 GPU 一直满负荷",
                    "Wrong: stage 2 waits for stage 1's output."),
             Option("it is faster than one GPU by p", "比单卡快 p 倍",
                    "Wrong: no overlap, so no speed-up."))),
    Item("pp-article-code", T, 3,
         "The article's coding answer 2, ported to PyTorch on 2 ranks: rank 0 holds the first "
         "layer, rank 1 the second and the loss. Each must return its layer's weight gradients "
         "for the whole model's loss. Fix it.",
         "原文编程题 2 的答案移植到 PyTorch，2 个 rank：rank 0 持有第一层，rank 1 持有第二层和 "
         "loss。每个 rank 应返回整个模型 loss 对本层权重的梯度。请修复代码。",
         "code",
         "The article feeds both halves the raw input and calls a .gradient method no module "
         "has. Stage 1 must receive stage 0's activation (send/recv forward) and stage 0 must "
         "receive the activation's gradient back (send/recv backward), then backward(grad).",
         "05 (opening), §1",
         wrong_answers=(source("buggy_model_parallel_gradients"),),
         explanation_zh="原文把原始输入同时喂给两半模型，并调用了并不存在的 .gradient 方法。"
                        "前向要把第一段的激活发给第二段，反向要把激活的梯度发回第一段，再 "
                        "backward(grad)。",
         code=Code("model_parallel_gradients", "buggy_model_parallel_gradients",
                   "fixed_model_parallel_gradients")),
)
