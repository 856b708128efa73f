# edge case: buckets launched from Tensor.register_hook, before the gradient is added into .grad (built from the hook's gradients)
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
        self.bucket_of = {id(p): b for b, bucket in enumerate(self.buckets) for p in bucket}
        self.ready = [0] * len(self.buckets)
        self.grads = {}
        self.launched = []
        for p in trainable:
            p.register_hook(lambda grad, p=p: self._seen(p, grad))

    def _seen(self, p, grad):
        self.grads[id(p)] = grad
        self._grad_ready(p)

    def _grad_ready(self, p):
        self.ready[self.bucket_of[id(p)]] += 1
        while len(self.launched) < len(self.buckets):
            b = len(self.launched)
            if self.ready[b] < len(self.buckets[b]):
                return
            flat = torch.cat([self.grads[id(q)].reshape(-1) for q in self.buckets[b]])
            self.launched.append((dist.all_reduce(flat, async_op=True), flat))

    def finish(self):
        with torch.no_grad():
            for bucket, (work, flat) in zip(self.buckets, self.launched):
                work.wait()
                flat /= self.world
                offset = 0
                for p in bucket:
                    p.grad.copy_(flat[offset:offset + p.numel()].view_as(p))
                    offset += p.numel()
        self.ready = [0] * len(self.buckets)
        self.grads = {}
        self.launched = []
