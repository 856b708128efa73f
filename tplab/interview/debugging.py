"""Interview items on debugging distributed programs (lessons 00, 01, 02): hangs, mismatched
collectives, missing averaging, deadlocks. The two code items run the learner's fix on real
ranks (tplab.interview.bugs) under a deadline short enough that a still-deadlocked fix fails.
"""
from tplab.interview.bugs import source
from tplab.interview.items import Code, Item, Option

T = "debugging"

ITEMS = (
    Item("dbg-missing-average", T, 2,
         "This data-parallel SGD step trains, but its replicas drift apart and it does not "
         "match one process on the whole batch. Fix it (2 ranks, each with half the batch).",
         "这个数据并行 SGD 步骤能训练，但各副本的参数逐渐不一致，且与单进程跑整个 batch "
         "的结果不同。请修复（2 个 rank，各持有一半 batch）。",
         "code",
         "The gradients are never combined: each replica steps on its own shard. All-reduce "
         "each gradient and divide by the world size; summing without dividing keeps replicas "
         "equal but takes a step world-size times too big.",
         "02 §2", wrong_answers=(source("buggy_train_step"), source("summed_train_step")),
         explanation_zh="梯度从未汇总，每个副本只用自己那份数据更新。应对每个梯度 all-reduce "
                        "后除以 world size；只求和不除，副本虽一致但步长大了 world size 倍。",
         code=Code("train_step", "buggy_train_step", "fixed_train_step")),
    Item("dbg-deadlock", T, 2,
         "Every rank should send its tensor to rank + 1 and return what rank - 1 sent. The run "
         "hangs. Fix it so it finishes and returns the right tensors.",
         "每个 rank 应把自己的张量发给 rank + 1，并返回 rank - 1 发来的张量。程序卡死了。请修复，"
         "使其能结束并返回正确的张量。",
         "code",
         "Every rank blocks in send waiting for a receiver that is itself blocked in send: a "
         "cycle, so a deadlock. Start the send without waiting (isend), receive, then wait; or "
         "let even ranks send first and odd ranks receive first.",
         "01 §2, 00 §5", wrong_answers=(source("buggy_pass_right"),),
         explanation_zh="每个 rank 都阻塞在 send 上，等待同样阻塞在 send 上的接收方：形成环，死锁。"
                        "改为 isend 发送、再 recv、最后 wait；或让偶数 rank 先发、奇数 rank 先收。",
         code=Code("pass_right", "buggy_pass_right", "fixed_pass_right", timeout=10.0)),
    Item("dbg-mismatch", T, 2,
         "A job hangs; stack dumps show every rank inside a collective: rank 0 in all_reduce, "
         "rank 1 in broadcast. What is wrong and how do you find it fast?",
         "作业卡住了；栈信息显示所有 rank 都在集合通信里：rank 0 在 all_reduce，rank 1 在 "
         "broadcast。问题是什么？如何快速定位？",
         "choice",
         "Mismatched collectives: every rank must call the same collectives in the same order "
         "with the same sizes. TORCH_DISTRIBUTED_DEBUG=DETAIL (tplab.launch(debug=True)) checks "
         "each call across ranks and fails at once naming the mismatch.",
         "00 §5, 01 §3", wrong_answers=("B", "C", "D"), correct="A",
         explanation_zh="集合通信调用不匹配：每个 rank 必须以相同的顺序、"
                        "相同的大小调用相同的集合通信。TORCH_DISTRIBUTED_DEBUG=DETAIL"
                        "（tplab.launch(debug=True)）会跨 rank 核对每次调用，"
                        "一旦不匹配立即报错并指出不匹配之处。",
         options=(
             Option("mismatched collectives; run with TORCH_DISTRIBUTED_DEBUG=DETAIL",
                    "集合通信调用不匹配；用 TORCH_DISTRIBUTED_DEBUG=DETAIL 运行",
                    "Right: same calls, same order, same sizes on every rank."),
             Option("the network is slow: raise the timeout", "网络慢，调大超时时间",
                    "Wrong: it will never complete."),
             Option("rank 1 crashed", "rank 1 崩溃了",
                    "Wrong: its stack shows it alive in broadcast."),
             Option("a GPU is out of memory", "某张 GPU 显存不足",
                    "Wrong: that raises, it does not hang."))),
    Item("dbg-echo", T, 2,
         "Rank 2 raises ValueError; a moment later ranks 0, 1 and 3 fail with 'Connection closed "
         "by peer'. Which failure is the cause?",
         "rank 2 抛出 ValueError；片刻之后 rank 0、1、3 报错“Connection closed by peer”。"
         "哪个错误才是根因？",
         "choice",
         "The first failure that is not an echo: rank 2's ValueError. Its peers were waiting in "
         "a collective with it and lost the connection when it died; tplab.launch reports the "
         "earliest non-echo failure for this reason.",
         "00 §4", wrong_answers=("B", "C"), correct="A",
         explanation_zh="根因是最早的非连锁错误：rank 2 的 ValueError。"
                        "其他 rank 正和它一起等在某个集合通信里，它一退出连接就断了；正因如此，"
                        "tplab.launch 报告的是最早的非连锁错误。",
         options=(
             Option("rank 2's ValueError, the first non-echo failure",
                    "rank 2 的 ValueError，最早的非连锁错误",
                    "Right: the others are echoes."),
             Option("rank 0's, the lowest rank", "rank 0 的，编号最小",
                    "Wrong: rank numbers say nothing about causes."),
             Option("the network: three ranks report it", "网络问题，三个 rank 都这么报",
                    "Wrong: the loudest is not the first."))),
    Item("dbg-barrier-in-if", T, 1,
         "`if dist.get_rank() == 0: dist.barrier()` is added to save a checkpoint. What happens?",
         "为保存 checkpoint 加了 `if dist.get_rank() == 0: dist.barrier()`。会发生什么？",
         "choice",
         "Rank 0 waits forever for the others to enter a barrier they never call: a collective "
         "must be called by every rank of its group. Put the barrier outside the if.",
         "00 §5, 01 §3", wrong_answers=("A", "C"), correct="B",
         explanation_zh="rank 0 永远在等其他 rank 进入 barrier，而它们根本不会调用："
                        "集合通信必须由组内每个 rank 都调用。把 barrier 移到 if 外面。",
         options=(
             Option("rank 0 waits alone, then continues", "rank 0 单独等一下然后继续",
                    "Wrong: a barrier needs everyone."),
             Option("rank 0 hangs until the timeout", "rank 0 一直卡到超时",
                    "Right: the other ranks never arrive."),
             Option("an error is raised at once", "立刻报错",
                    "Wrong: nothing detects it until the deadline (or DETAIL debug)."))),
    Item("dbg-summed", T, 2,
         "A DDP-like loop all-reduces gradients but forgets to divide by the world size. What "
         "do you observe with 8 ranks?",
         "一个类似 DDP 的训练循环对梯度做了 all-reduce，但忘了除以 world size。8 个 rank 时会看到"
         "什么现象？",
         "choice",
         "Replicas stay identical (they all add the same sum), but every step is 8× too large, "
         "as if the learning rate were 8×: the loss may diverge. Missing the all-reduce "
         "altogether is the bug where replicas drift apart.",
         "02 §2", wrong_answers=("A", "B"), correct="C",
         explanation_zh="各副本保持一致（都加上同一个和），但每步都大了 8 倍，相当于学习率乘以 8："
                        "loss 可能发散。完全漏掉 all-reduce 才是副本参数逐渐不一致的那个 bug。",
         options=(
             Option("replicas drift apart", "各副本参数逐渐不一致",
                    "Wrong: that is the missing all-reduce."),
             Option("nothing: Adam normalises it away", "没影响，Adam 会把它归一化掉",
                    "Wrong for SGD; Adam hides the scale only partly (epsilon, clipping)."),
             Option("replicas agree, but the effective learning rate is 8×",
                    "各副本一致，但等效学习率变为 8 倍", "Right: a sum of 8 means."))),
    Item("dbg-lost-worker", T, 2,
         "A serving worker process dies in the middle of a request. What should the pool do?",
         "推理服务中某个 worker 进程在处理请求时崩溃。服务池应该怎么做？",
         "choice",
         "Notice the dead worker (its pipe closes or a deadline passes), put its request back "
         "on the queue for another worker, and report it; a request must be safe to run twice.",
         "06 §4", wrong_answers=("B", "C"), correct="A",
         explanation_zh="发现 worker 已死（它的管道关闭或超过了截止时间），"
                        "把它的请求放回队列交给其他 worker，并上报；"
                        "同一个请求必须可以安全地执行两次。",
         options=(
             Option("re-queue its request to another worker", "把该请求重新放回队列交给其他 worker",
                    "Right: retried, reported."),
             Option("wait for the worker to come back", "等待该 worker 恢复",
                    "Wrong: a dead process never answers."),
             Option("stop the whole pool", "停止整个服务池",
                    "Wrong: the other workers are fine."))),
)
