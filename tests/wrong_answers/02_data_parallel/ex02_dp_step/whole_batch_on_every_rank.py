# skipping the sharding: every rank runs the whole batch (right gradients, n times the work)
def dp_step(model, optimizer, x, y):
    world = dist.get_world_size()
    optimizer.zero_grad()
    loss = F.mse_loss(model(x), y)
    loss.backward()
    for p in model.parameters():
        if p.requires_grad:
            dist.all_reduce(p.grad)
            p.grad /= world
    optimizer.step()
    return loss.item()
