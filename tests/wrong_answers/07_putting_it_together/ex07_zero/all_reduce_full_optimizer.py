# plain data parallelism: all-reduce the whole gradient, AdamW over every element on every rank
class Zero1:
    # ZeRO-1 over the world: AdamW on this rank's shard of flat_params only

    def __init__(self, flat_params, **adamw):
        self.params, self.world = flat_params, dist.get_world_size()
        self.whole = torch.nn.Parameter(flat_params.clone())
        self.optimizer = torch.optim.AdamW([self.whole], **adamw)

    def step(self, flat_grad):
        grad = flat_grad.clone()
        dist.all_reduce(grad)
        self.whole.grad = grad / self.world
        self.optimizer.step()
        self.params.copy_(self.whole.detach())
