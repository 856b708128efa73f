# synchronises the wrong thing: parameters averaged after the step, the gradients left per rank
def dp_step(model, optimizer, x, y):
    rank, world = dist.get_rank(), dist.get_world_size()
    x_mine, y_mine = x.tensor_split(world)[rank], y.tensor_split(world)[rank]
    optimizer.zero_grad()
    loss = F.mse_loss(model(x_mine), y_mine)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                dist.all_reduce(p)
                p /= world
    return loss.item()
