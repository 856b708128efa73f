"""Interview items on collectives and what they cost (lesson 01): ring all-reduce, α–β.

Data, not code: every number here is computed by `tplab.comm.cost`, whose ring formulas lesson
01 fits to this machine's measurements.
"""
from tplab.interview.items import Item, Numeric, Option

T = "collectives"
RING = "tplab.comm.cost.ring_all_reduce_time"

ITEMS = (
    Item("coll-ring-bytes", T, 1,
         "A ring all-reduce of N = 1 GB per rank runs on n = 8 ranks. How many GB does each rank "
         "send (the bandwidth term only, α = 0)?",
         "在 n = 8 个 rank 上做 ring all-reduce，每个 rank 的数据量 N = 1 GB。每个 rank 需要发送"
         "多少 GB 数据（只算带宽项，α = 0）？",
         "numeric",
         "A ring all-reduce is a reduce-scatter then an all-gather, each n-1 steps of N/n bytes: "
         "2(n-1)/n·N = 2·7/8·1 GB = 1.75 GB, almost independent of n (it tends to 2N).",
         "01 §7, §9", wrong_answers=("2", "1", "14"),
         explanation_zh="ring all-reduce = reduce-scatter + all-gather，各 n-1 步、每步 N/n 字节："
                        "2(n-1)/n·N = 1.75 GB，几乎与 n 无关（趋近于 2N）。",
         numeric=Numeric(RING, (1e9, 8, 0.0, 1.0), scale=1e-9, unit="GB", rtol=0.01)),
    Item("coll-alpha-beta", T, 2,
         "All-reduce 100 MB per rank over 8 ranks with a ring; α = 5 µs per message, link "
         "bandwidth 100 GB/s (β = 1e-11 s/B). How many milliseconds does the α–β model predict?",
         "8 个 rank 用 ring 算法 all-reduce 每个 rank 100 MB 数据；每条消息启动延迟 α = 5 µs，"
         "链路带宽 100 GB/s（β = 1e-11 s/B）。α–β 模型预测耗时多少毫秒？",
         "numeric",
         "T = 2(n-1)·α + 2(n-1)/n·N·β = 14·5 µs + 1.75e8 B·1e-11 s/B = 0.07 + 1.75 = 1.82 ms. "
         "Forgetting α gives 1.75; charging 2N gives 2.0.",
         "01 §9", wrong_answers=("1.75", "2.0", "0.07", "1.785"),  # 1.785: (n-1)·α
         explanation_zh="T = 2(n-1)·α + 2(n-1)/n·N·β = 0.07 + 1.75 = 1.82 ms；漏掉 α 得 1.75，"
                        "按 2N 算得 2.0。",
         numeric=Numeric(RING, (1e8, 8, 5e-6, 1e-11), scale=1e3, unit="ms", rtol=0.01)),
    Item("coll-crossover", T, 2,
         "A link has α = 10 µs and 10 GB/s of bandwidth. At what message size (KB) does the "
         "transfer time N·β equal the start-up time α?",
         "某链路 α = 10 µs、带宽 10 GB/s。消息多大（KB）时，传输时间 N·β 恰好等于启动延迟 α？",
         "numeric",
         "N* = α/β = 10 µs × 10 GB/s = 100 KB. Below it a message is latency-bound: halving its "
         "bytes saves almost nothing; above it, bandwidth-bound.",
         "01 §10", wrong_answers=("1000", "10", "1"),
         explanation_zh="N* = α/β = 100 KB。小于它的消息受延迟限制（latency-bound），"
                        "减少字节数几乎不省时间；大于它则受带宽限制。",
         numeric=Numeric("tplab.comm.cost.crossover_bytes", (1e-5, 1e-10), scale=1e-3, unit="KB")),
    Item("coll-small-message", T, 2,
         "A ring all-reduce of a single fp32 number (4 bytes) over 8 ranks, α = 10 µs, "
         "β = 1e-10 s/B. How many microseconds?",
         "8 个 rank 对单个 fp32 标量（4 字节）做 ring all-reduce，α = 10 µs，β = 1e-10 s/B。"
         "耗时多少微秒？",
         "numeric",
         "2(n-1)·α = 14 × 10 µs = 140 µs; the bytes cost nothing. A loss or a norm all-reduced "
         "every step is pure latency, which is why small tensors are bucketed together.",
         "01 §10", wrong_answers=("10", "20", "0"),
         explanation_zh="2(n-1)·α = 140 µs，字节本身几乎不花时间。每步单独 all-reduce 一个小张量"
                        "全是延迟开销，所以要把小梯度合并成 bucket。",
         numeric=Numeric(RING, (4, 8, 1e-5, 1e-10), scale=1e6, unit="µs")),
    Item("coll-all-gather", T, 2,
         "A ring all-gather whose result is 1 GB per rank runs on 8 ranks at 100 GB/s (α = 0). "
         "How many milliseconds?",
         "8 个 rank 做 ring all-gather，每个 rank 最终得到 1 GB，带宽 100 GB/s（α = 0）。"
         "耗时多少毫秒？",
         "numeric",
         "(n-1)/n·N·β = 7/8 × 1 GB / 100 GB/s = 8.75 ms: half an all-reduce, because an "
         "all-reduce is a reduce-scatter plus this all-gather.",
         "01 §5, §9", wrong_answers=("10", "17.5", "80"),
         explanation_zh="(n-1)/n·N·β = 8.75 ms，正好是 all-reduce 的一半：all-reduce = "
                        "reduce-scatter + all-gather。",
         numeric=Numeric("tplab.comm.cost.all_gather_time", (1e9, 8, 0.0, 1e-11), scale=1e3,
                         unit="ms")),
    Item("coll-halves", T, 1,
         "Which pair of collectives, one after the other, is an all-reduce?",
         "哪两个集合通信操作依次执行，等价于一次 all-reduce？",
         "choice",
         "Reduce-scatter leaves each rank the sum of one 1/n slice; all-gather then gives every "
         "rank every slice. ZeRO and sequence parallelism split the all-reduce exactly there.",
         "01 §5", wrong_answers=("B", "C", "D"), correct="A",
         explanation_zh="reduce-scatter 之后，每个 rank 持有其中一个 1/n 分片的和；"
                        "all-gather 再把每个分片发给每个 rank。ZeRO 和序列并行正是在这里把 "
                        "all-reduce 拆成两半。",
         options=(
             Option("reduce-scatter, then all-gather", "reduce-scatter，然后 all-gather",
                    "Right: the sum of each slice, then every slice everywhere."),
             Option("broadcast, then reduce", "broadcast，然后 reduce",
                    "Wrong: a reduce leaves the sum on one root only."),
             Option("all-to-all, twice", "两次 all-to-all",
                    "Wrong: all-to-all moves pieces and adds nothing."),
             Option("scatter, then gather", "scatter，然后 gather",
                    "Wrong: no reduction at all, and the result sits on one root."))),
    Item("coll-ring-scaling", T, 2,
         "True or false: in a ring all-reduce, the bytes each rank sends grow linearly with the "
         "number of ranks.",
         "判断题：ring all-reduce 中，每个 rank 发送的字节数随 rank 数线性增长。",
         "choice",
         "False: each rank sends 2(n-1)/n·N, which tends to 2N. What grows with n is the number "
         "of steps, 2(n-1), so the latency term 2(n-1)·α.",
         "01 §7, §9", wrong_answers=("A",), correct="B",
         explanation_zh="错。每个 rank 发送 2(n-1)/n·N，趋近 2N；随 n 增长的是步数 2(n-1)，"
                        "即延迟项 2(n-1)·α。",
         options=(
             Option("True", "对", "Wrong: the volume per rank is bounded by 2N."),
             Option("False", "错", "Right: bandwidth cost is ~2N per rank; latency grows."))),
    Item("coll-all-to-all", T, 2,
         "Which collective sends a different piece of each rank's tensor to every other rank "
         "(a transpose across ranks, as in expert parallelism or Ulysses sequence parallelism)?",
         "哪个集合通信操作让每个 rank 把自己张量的不同分块分别发给其他每个 rank（跨 rank 的转置，"
         "如专家并行或 Ulysses 序列并行）？",
         "choice",
         "All-to-all: rank i's j-th piece goes to rank j. All-gather sends the same piece to all.",
         "01 §6", wrong_answers=("A", "C", "D"), correct="B",
         explanation_zh="all-to-all：rank i 的第 j 块发给 rank j。all-gather 则是把同一块发给所有 "
                        "rank。",
         options=(
             Option("all-gather", "all-gather", "Wrong: every rank receives the same pieces."),
             Option("all-to-all", "all-to-all", "Right: piece j of rank i goes to rank j."),
             Option("reduce-scatter", "reduce-scatter", "Wrong: it sums pieces."),
             Option("broadcast", "broadcast", "Wrong: one root's whole tensor to everyone."))),
)
