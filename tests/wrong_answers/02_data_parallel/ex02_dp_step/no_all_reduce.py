# skipping the communication: each rank steps on its own shard's gradient (the source article's answer)
def dp_step(model, optimizer, x, y):
    rank, world = dist.get_rank(), dist.get_world_size()
    x_mine, y_mine = x.tensor_split(world)[rank], y.tensor_split(world)[rank]
    optimizer.zero_grad()
    loss = F.mse_loss(model(x_mine), y_mine)
    loss.backward()
    optimizer.step()
    return loss.item()
