# micro-batches of len // k rows each: the rows left over at the slice's end are dropped
import contextlib


def accumulate_step(ddp_model, optimizer, x, y, k):
    rank, world = dist.get_rank(), dist.get_world_size()
    xs, ys = x.tensor_split(world)[rank], y.tensor_split(world)[rank]
    size = len(xs) // k
    optimizer.zero_grad()
    for j in range(k):
        xm, ym = xs[j * size:(j + 1) * size], ys[j * size:(j + 1) * size]
        with ddp_model.no_sync() if j < k - 1 else contextlib.nullcontext():
            (F.mse_loss(ddp_model(xm), ym) / k).backward()
    optimizer.step()
