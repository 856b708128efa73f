# reduce-scatter right, but AdamW over the whole padded buffer on every rank (state not sharded)
class Zero1:
    # ZeRO-1 over the world: AdamW on this rank's shard of flat_params only

    def __init__(self, flat_params, **adamw):
        self.params, self.world, self.rank = flat_params, dist.get_world_size(), dist.get_rank()
        self.shard_numel = math.ceil(flat_params.numel() / self.world)
        self.padded = torch.nn.Parameter(torch.zeros(self.shard_numel * self.world))
        with torch.no_grad():
            self.padded[:flat_params.numel()] = flat_params
        self.optimizer = torch.optim.AdamW([self.padded], **adamw)

    def step(self, flat_grad):
        grad = torch.zeros(self.padded.numel())
        grad[:flat_grad.numel()] = flat_grad
        mine = torch.empty(self.shard_numel)
        comm.reduce_scatter(mine, grad)
        start = self.rank * self.shard_numel
        self.padded.grad = torch.zeros_like(self.padded)
        self.padded.grad[start:start + self.shard_numel] = mine / self.world
        self.optimizer.step()
        with torch.no_grad():
            comm.all_gather_into(self.padded, self.padded[start:start + self.shard_numel].clone())
        self.params.copy_(self.padded.detach()[:self.params.numel()])
