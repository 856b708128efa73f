# each rank runs its layer on the raw input with a loss of its own: no activation passed on
def model_parallel_gradients(stage, x, y):
    # rank 0: the first layer; rank 1: the second layer and the loss
    F.mse_loss(stage(x), y).backward()
    return [p.grad for p in stage.parameters()]
