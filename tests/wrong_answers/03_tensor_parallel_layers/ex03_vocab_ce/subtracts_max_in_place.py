# mutating the caller's tensors: the max is subtracted from local_logits in place
class VocabParallelCrossEntropy(torch.autograd.Function):

    @staticmethod
    def forward(ctx, local_logits, target, vocab_start):
        top = local_logits.max(dim=-1).values
        dist.all_reduce(top, op=dist.ReduceOp.MAX)
        shifted = local_logits.sub_(top.unsqueeze(-1))
        local = target - vocab_start
        mine = (local >= 0) & (local < local_logits.shape[-1])
        index = local.masked_fill(~mine, 0).unsqueeze(-1)
        target_logit = shifted.gather(-1, index).squeeze(-1).masked_fill(~mine, 0.0)
        dist.all_reduce(target_logit)
        exp = shifted.exp()
        sum_exp = exp.sum(dim=-1)
        dist.all_reduce(sum_exp)
        ctx.save_for_backward(exp / sum_exp.unsqueeze(-1), index, mine)
        return sum_exp.log() - target_logit

    @staticmethod
    def backward(ctx, grad_loss):
        softmax, index, mine = ctx.saved_tensors
        grad = softmax.scatter_add(-1, index, -mine.unsqueeze(-1).to(softmax.dtype))
        return grad * grad_loss.unsqueeze(-1), None, None
