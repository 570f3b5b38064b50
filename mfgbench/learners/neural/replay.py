"""Pieces shared by the neural learners: the replay buffer, Polyak averaging and frozen target copies."""
from __future__ import annotations

import copy

import torch
from torch import nn


class ReplayBuffer:
    """Circular buffer of transitions with named fields, each a tensor with a per-transition shape.

    ``ReplayBuffer(capacity, s=(n,), a=((), torch.int64), ...)``: a field is a shape, or a (shape,
    dtype) pair (float32 by default); ``add(**fields)`` stores a batch (the oldest transitions are
    overwritten), ``sample(batch, gen)`` draws transitions uniformly with a seeded ``torch.Generator``
    and returns the fields in their declared order.
    """

    def __init__(self, capacity: int, **fields):
        self.capacity, self.size, self.pos = int(capacity), 0, 0
        self.names = list(fields)
        self.data = {}
        for name, spec in fields.items():
            shape, dtype = spec if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[1], torch.dtype) \
                else (spec, torch.float32)
            self.data[name] = torch.zeros((self.capacity,) + tuple(shape), dtype=dtype)

    def add(self, **batch):
        if set(batch) != set(self.names):
            raise ValueError(f"ReplayBuffer.add: expected fields {self.names}, got {sorted(batch)}")
        n = next(v.shape[0] for v in batch.values() if torch.is_tensor(v) and v.dim() > 0)
        idx = (self.pos + torch.arange(n)) % self.capacity
        for name, v in batch.items():
            self.data[name][idx] = v
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch: int, gen: torch.Generator) -> tuple:
        i = torch.randint(0, self.size, (batch,), generator=gen)
        return tuple(self.data[name][i] for name in self.names)


def polyak(target: nn.Module, source: nn.Module, tau: float):
    """theta' <- tau theta + (1 - tau) theta' (tau = 1: a plain copy, the periodic target update)."""
    with torch.no_grad():
        for pt, ps in zip(target.parameters(), source.parameters()):
            pt.mul_(1.0 - tau).add_(ps, alpha=tau)


def frozen_copy(net: nn.Module) -> nn.Module:
    """A copy of ``net`` without gradients: a target network."""
    twin = copy.deepcopy(net)
    for p in twin.parameters():
        p.requires_grad_(False)
    return twin
