"""Helpers shared by the model test files: a random batch and a short Adam run."""

import torch


def random_batch(t_in, t_out, c, h, w, batch=2, seed=0):
    """A reproducible random `(x, y)` pair of shapes `(B, T_in, C, H, W)` and `(B, T_out, C, H, W)`."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, t_in, c, h, w, generator=gen), torch.randn(batch, t_out, c, h, w, generator=gen)


def adam_losses(model, x, y, steps, lr=1e-2):
    """Train `model` on one batch with Adam for `steps` steps of its `training_loss`; the losses seen."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for step in range(steps):
        loss, _ = model.training_loss(x, y, step)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses
