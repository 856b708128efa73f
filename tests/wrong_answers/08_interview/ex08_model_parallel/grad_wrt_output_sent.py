# rank 1 sends the gradient w.r.t. its OUTPUT (dL/dout), not w.r.t. the activation it received
def model_parallel_gradients(stage, x, y):
    # rank 0: the first layer; rank 1: the second layer and the loss
    if dist.get_rank() == 0:
        hidden = stage(x)
        dist.send(hidden.detach(), dst=1)
        grad = torch.empty(len(x), 1)
        dist.recv(grad, src=1)
        hidden.backward(grad.expand_as(hidden))
    else:
        hidden = torch.empty(len(x), stage.in_features)
        dist.recv(hidden, src=0)
        out = stage(hidden)
        out.retain_grad()
        F.mse_loss(out, y).backward()
        dist.send(out.grad, dst=0)
    return [p.grad for p in stage.parameters()]
