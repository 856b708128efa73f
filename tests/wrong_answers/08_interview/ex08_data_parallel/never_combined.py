# the loss's gradient w.r.t. the weights, right, but never all-reduced: each rank keeps its own
def data_parallel_gradients(model, x, y):
    # every rank: the gradient of the whole batch's mean loss, one tensor per weight
    loss = F.mse_loss(model(x), y)
    return list(torch.autograd.grad(loss, list(model.parameters())))
