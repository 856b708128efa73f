# the activation is sent forward, but its gradient never comes back to rank 0
def model_parallel_gradients(stage, x, y):
    # rank 0: the first layer; rank 1: the second layer and the loss
    if dist.get_rank() == 0:
        hidden = stage(x)
        dist.send(hidden.detach(), dst=1)
    else:
        hidden = torch.empty(len(x), stage.in_features)
        dist.recv(hidden, src=0)
        F.mse_loss(stage(hidden), y).backward()
    return [p.grad for p in stage.parameters()]
