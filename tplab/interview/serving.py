"""Interview items on task parallelism and serving (lesson 06): scheduling, Graham's bound,
continuous batching, failures, and the article's second concept question.

The throughput number comes from `tplab.cost.time.decode_time` (memory-bound decoding).
"""
from tplab.cost.machines import H100
from tplab.cost.model import LLAMA2_70B
from tplab.interview.items import Item, Numeric, Option

T = "serving"

ITEMS = (
    Item("sv-task-parallelism", T, 1,
         "The article says task parallelism 'splits an iterative computation into sub-tasks'. "
         "In LLM serving, what is task parallelism?",
         "原文说任务并行是“把需要多次迭代的计算任务分解为子任务”。在 LLM 推理服务中，任务并行"
         "指的是什么？",
         "choice",
         "Independent requests run on independent replicas (processes, GPUs, machines) with no "
         "communication between them; a scheduler hands them out. The article's iterative "
         "sub-tasks describe something else, and its answer never says the tasks are independent.",
         "06 §2, §7", wrong_answers=("A", "C", "D"), correct="B",
         explanation_zh="互相独立的请求在互相独立的副本（进程、GPU、机器）上运行，副本之间无需通信，"
                        "由调度器分发。原文没有点出“任务相互独立”这一关键。",
         options=(
             Option("splitting one request's layers across GPUs", "把一个请求的各层切到多张 GPU",
                    "Wrong: that is pipeline (model) parallelism."),
             Option("independent requests on independent replicas, no communication between them",
                    "独立的请求在独立的副本上运行，副本间不通信",
                    "Right: a pool of workers fed by a scheduler."),
             Option("splitting each matrix product across GPUs", "把每个矩阵乘切到多张 GPU",
                    "Wrong: that is tensor parallelism."),
             Option("running one request's decode iterations on different GPUs",
                    "把一个请求的各个解码迭代放到不同 GPU",
                    "Wrong: each token depends on the previous one."))),
    Item("sv-graham", T, 3,
         "w workers pull requests from one queue (greedy list scheduling); task times t_i are "
         "known only when done. Which bound on the makespan T holds (Graham 1966)?",
         "w 个 worker 从同一队列中取请求（贪心列表调度），每个任务耗时 t_i 事先未知。"
         "关于总完成时间（makespan）T，哪个上界成立（Graham 1966）？",
         "choice",
         "T ≤ Σt/w + (1 - 1/w)·max t: when the last task starts every worker was busy, so its "
         "start ≤ (Σt - t_last)/w. Hence at most 2 - 1/w times the optimum, and one long "
         "request dominates a heavy-tailed workload.",
         "06 §2, §3", wrong_answers=("A", "B", "D"), correct="C",
         explanation_zh="T ≤ Σt/w + (1 - 1/w)·max t：最后一个任务开始时所有 worker 都在忙，"
                        "所以它的开始时间 ≤ (Σt - t_last)/w。因此最多是最优解的 2 - 1/w 倍；"
                        "在重尾负载下，一个长请求就决定了总时间。",
         options=(
             Option("T ≤ Σt / w", "T ≤ Σt / w",
                    "Wrong: that is the lower bound (perfect balance)."),
             Option("T ≤ max t", "T ≤ max t", "Wrong: many short tasks exceed the longest."),
             Option("T ≤ Σt/w + (1 - 1/w)·max t", "T ≤ Σt/w + (1 - 1/w)·max t",
                    "Right: Graham's list-scheduling bound."),
             Option("T ≤ w · max t", "T ≤ w · max t", "Wrong: neither tight nor the bound."))),
    Item("sv-dynamic", T, 2,
         "Request lengths are heavy-tailed. Which assignment to 4 replicas finishes sooner?",
         "请求长度呈重尾分布。分配给 4 个副本时，哪种方式更快完成？",
         "choice",
         "Dynamic (workers pull the next request when free): a static split fixes shares before "
         "lengths are known, so one replica may get several long requests while others idle.",
         "06 §2", wrong_answers=("B", "C"), correct="A",
         explanation_zh="动态分配（worker 空闲时取下一个请求）："
                        "静态划分在知道请求长度之前就定好了份额，"
                        "某个副本可能分到好几个长请求，而其他副本却闲着。",
         options=(
             Option("dynamic: a free worker takes the next request",
                    "动态：空闲的 worker 取下一个请求",
                    "Right: load balances itself, within Graham's bound."),
             Option("static round-robin, decided up front", "事先固定的轮询分配",
                    "Wrong: shares are fixed before lengths are known."),
             Option("they are always equal", "两者总是一样", "Wrong: only for equal lengths."))),
    Item("sv-shortest-first", T, 2,
         "Ordering the queue shortest-request-first instead of FIFO mainly changes what?",
         "把请求队列从先进先出（FIFO）改为最短优先（SJF），主要改变了什么？",
         "choice",
         "Mean and median latency drop (no head-of-line blocking behind a long request) while "
         "the makespan barely moves; the long requests wait longest and can starve under load.",
         "06 §3", wrong_answers=("B", "C", "D"), correct="A",
         explanation_zh="平均延迟和中位延迟下降（短请求不再排在长请求后面，没有队头阻塞），"
                        "而 makespan 几乎不变；长请求等得最久，高负载下可能被饿死。",
         options=(
             Option("lower mean latency; long requests wait longer",
                    "平均延迟降低，长请求等待更久", "Right: the classic SJF trade."),
             Option("throughput doubles", "吞吐翻倍", "Wrong: the same total work."),
             Option("it removes the need for more replicas", "不再需要更多副本",
                    "Wrong: capacity is unchanged."),
             Option("the makespan always halves", "makespan 总是减半",
                    "Wrong: makespan is set by total work and the longest task."))),
    Item("sv-continuous-batching", T, 2,
         "What does continuous (in-flight) batching do that static batching does not?",
         "连续批处理（continuous / in-flight batching）做了哪件静态批处理不做的事？",
         "choice",
         "When a sequence finishes, a waiting request takes its slot at the next decode step; a "
         "static batch runs until its longest sequence ends, its finished slots idle.",
         "06 §5", wrong_answers=("A", "C", "D"), correct="B",
         explanation_zh="某个序列结束后，等待中的请求在下一个解码步就占用它的位置；"
                        "静态 batch 则要一直跑到最长的序列结束，已完成的位置只能空着。",
         options=(
             Option("it uses larger batches", "使用更大的 batch", "Wrong: the same max batch."),
             Option("it refills a finished sequence's slot at the next step",
                    "某个序列结束后，下一步就把空位补上新请求",
                    "Right: no waiting for the longest sequence."),
             Option("it splits each request over GPUs", "把每个请求切到多张 GPU",
                    "Wrong: that is model parallelism."),
             Option("it skips the KV cache", "不使用 KV cache", "Wrong: it still caches."))),
    Item("sv-batch-throughput", T, 3,
         "Llama-2-70B on 8×H100 with TP = 8, batch 64, each sequence with 4096 tokens of "
         "context: how many tokens per second does the replica decode?",
         "8×H100 上 TP = 8 部署 Llama-2-70B，batch 64，每个序列上下文 4096 token："
         "该副本每秒解码多少 token？",
         "numeric",
         "Still memory-bound: each step reads 17.2 GB of weights per GPU plus 10.7 GB of KV "
         "cache, ~14.6 ms per step for 64 tokens: ~4400 tokens/s, 40× batch 1 (110/s) but not "
         "64×, because the KV cache read grows with the batch.",
         "04 §5, 06 §5, 07 §6", wrong_answers=("110", "7000", "1000"),
         explanation_zh="仍受显存带宽限制：每步每卡读 17.2 GB 权重和 10.7 GB KV cache，约 14.6 ms "
                        "产出 64 个 token，约 4400 token/s；是 batch 1 的 40 倍而非 64 倍，因为 KV "
                        "cache 读取随 batch 增长。",
         numeric=Numeric("tplab.cost.time.decode_time", (LLAMA2_70B, 8, H100),
                         (("batch", 64), ("context", 4096)), pick="tokens_per_s",
                         unit="tokens/s", rtol=0.05)),
)
