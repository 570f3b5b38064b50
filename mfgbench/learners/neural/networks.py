"""Networks of the neural learners: MLPs, and heads on per-population density encoders.

``Network(layout, ...)`` reads an input whose first ``layout.n_head`` columns (time, position or
state) go straight to the head and whose remaining columns are one density summary per seen
population; each summary goes through a small encoder of its own population (two layers), the
encodings are concatenated with the head columns (and an optional extra input such as an action),
and an MLP with two hidden layers gives the output: the per-population encoders of the MADDPG
source and the separate encoders of the heterogeneous-population source.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "silu": nn.SiLU, "tanh": nn.Tanh}


def mlp(sizes, gen: torch.Generator, final_init: float | None, activation: str = "relu") -> nn.Sequential:
    """MLP; layers uniform(+-1/sqrt(fan_in)) (Lillicrap et al.), the last one +-final_init and linear
    (``final_init=None``: like the others, and followed by the activation: an encoder)."""
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = nn.utils.skip_init(nn.Linear, a, b)
        last = i == len(sizes) - 2 and final_init is not None
        r = final_init if last else 1.0 / math.sqrt(a)
        with torch.no_grad():
            lin.weight.uniform_(-r, r, generator=gen)
            lin.bias.uniform_(-r, r, generator=gen)
        layers.append(lin)
        if not last:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class Layout:
    """Columns of a network input: ``n_head`` (e.g. time and position or state), then one density summary
    per seen population, of ``summaries[j]`` columns (populations may have different state spaces)."""

    n_head: int
    summaries: tuple

    @property
    def width(self) -> int:
        return self.n_head + sum(self.summaries)


class Network(nn.Module):
    """``head(t, x, enc_1(m_1), ..., enc_J(m_J), extra)``: each seen population's density summary through
    its own encoder (two layers of ``encoder_width``), concatenated with the time and position inputs
    (and ``extra``, e.g. an action), then an MLP with two hidden layers of ``hidden`` units."""

    def __init__(self, layout: Layout, n_extra, n_out, hidden, encoder_width, gen, final_init, activation):
        super().__init__()
        self.layout = layout
        self.encoders = nn.ModuleList(mlp([n, encoder_width, encoder_width], gen, None, activation)
                                      for n in layout.summaries)
        n_in = layout.n_head + len(layout.summaries) * encoder_width + n_extra
        self.head = mlp([n_in, hidden, hidden, n_out], gen, final_init, activation)

    def forward(self, s, extra=None):
        L = self.layout
        parts, start = [s[:, :L.n_head]], L.n_head
        for n, enc in zip(L.summaries, self.encoders):
            parts.append(enc(s[:, start:start + n]))
            start += n
        if extra is not None:
            parts.append(extra)
        return self.head(torch.cat(parts, dim=1))
