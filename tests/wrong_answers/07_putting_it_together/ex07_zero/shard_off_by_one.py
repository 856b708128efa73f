# shards of floor(P/N): the last parameter falls outside every shard and is never updated
class Zero1:
    # ZeRO-1 over the world: AdamW on this rank's shard of flat_params only

    def __init__(self, flat_params, **adamw):
        self.params, self.world, self.rank = flat_params, dist.get_world_size(), dist.get_rank()
        self.shard_numel = flat_params.numel() // self.world          # floor, not ceil
        self.padded = flat_params[:self.shard_numel * self.world].clone()
        start = self.rank * self.shard_numel
        self.shard = torch.nn.Parameter(self.padded[start:start + self.shard_numel].clone())
        self.optimizer = torch.optim.AdamW([self.shard], **adamw)

    def step(self, flat_grad):
        grad = flat_grad[:self.padded.numel()].clone()
        self.shard.grad = torch.empty_like(self.shard)
        comm.reduce_scatter(self.shard.grad, grad)
        self.shard.grad /= self.world
        self.optimizer.step()
        comm.all_gather_into(self.padded, self.shard.detach())
        self.params[:self.padded.numel()].copy_(self.padded)
