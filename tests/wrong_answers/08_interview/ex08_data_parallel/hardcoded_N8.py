# the global batch size hard-coded (N = 8) instead of all-reduced
def data_parallel_gradients(model, x, y):
    # every rank: the gradient of the whole batch's mean loss, one tensor per weight
    loss = F.mse_loss(model(x), y) * len(x) / 8
    grads = torch.autograd.grad(loss, list(model.parameters()))
    for g in grads:
        dist.all_reduce(g)
    return list(grads)
