# numbers wrong but traffic right: one all-reduce per parameter, but the sum is never divided by the number of ranks
def dp_step(model, optimizer, x, y):
    rank, world = dist.get_rank(), dist.get_world_size()
    x_mine, y_mine = x.tensor_split(world)[rank], y.tensor_split(world)[rank]
    optimizer.zero_grad()
    loss = F.mse_loss(model(x_mine), y_mine)
    loss.backward()
    for p in model.parameters():
        if p.requires_grad:
            dist.all_reduce(p.grad)
    optimizer.step()
    return loss.item()
