# not allowed here, with the reason said: the messages posted with batch_isend_irecv, which can hang on gloo (PiPPy #1130, pytorch #132644)
def two_stage_step(stage, x, target, shape):
    # rank 0 holds stage 0 and x, rank 1 stage 1 and target; shape: the activation's.
    # Forward and backward of one batch; rank 1 returns the loss.
    if dist.get_rank() == 0:
        h = stage(x)
        for work in dist.batch_isend_irecv([dist.P2POp(dist.isend, h.detach().contiguous(), 1)]):
            work.wait()
        grad = torch.empty(shape)
        for work in dist.batch_isend_irecv([dist.P2POp(dist.irecv, grad, 1)]):
            work.wait()
        h.backward(grad)
        return None
    h = torch.empty(shape)
    for work in dist.batch_isend_irecv([dist.P2POp(dist.irecv, h, 0)]):
        work.wait()
    h.requires_grad_()
    loss = F.cross_entropy(stage(h), target)
    loss.backward()
    for work in dist.batch_isend_irecv([dist.P2POp(dist.isend, h.grad, 0)]):
        work.wait()
    return loss.item()
