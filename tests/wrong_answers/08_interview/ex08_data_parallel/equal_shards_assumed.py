# right traffic, wrong numbers: shards assumed equal, the loss divided by the world size (the mean of means; wrong for 3+3+2)
def data_parallel_gradients(model, x, y):
    world = dist.get_world_size()
    loss = F.mse_loss(model(x), y) / world
    grads = torch.autograd.grad(loss, list(model.parameters()))
    for g in grads:
        dist.all_reduce(g)
    return list(grads)
