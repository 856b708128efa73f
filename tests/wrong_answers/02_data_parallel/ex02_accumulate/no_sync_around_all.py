# no_sync around all k micro-batches: DDP never all-reduces, each rank steps on its own slice
def accumulate_step(ddp_model, optimizer, x, y, k):
    rank, world = dist.get_rank(), dist.get_world_size()
    xs, ys = x.tensor_split(world)[rank], y.tensor_split(world)[rank]
    optimizer.zero_grad()
    with ddp_model.no_sync():
        for xm, ym in zip(xs.tensor_split(k), ys.tensor_split(k)):
            loss = F.mse_loss(ddp_model(xm), ym) * len(xm) / len(xs)
            loss.backward()
    optimizer.step()
