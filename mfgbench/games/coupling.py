"""Games whose mean-field dependence is affine in linear features of the flows.

A game declaring an :class:`AffineCoupling` says that its populations k = 0..K-1, each on its own
state space (S_k states, A_k actions), meet only through *features* of their distributions,

    phi_t = sum_j F_j mu_j,t        (F_j an n_features x S_j matrix),

and through each population's own log-density: population k earns and moves by

    R_k,t(s, a)            = B_k,t(s, a) + (G_k phi_t)[s, a] - eta_k(s) log(mu_k,t(s) + eps),
    P_k,t(succ_k[s, a, b]) = p_k,t(s, a, b) + (H_k phi_t)[s, a, b],
    g_k(s)                 = g0_k(s) + (J_k phi_T)[s] - eta_k(s) log(mu_k,T(s) + eps)   (``terminal=True``)

where B, p, g0 do not depend on the mean field (they may depend on t) and the successor lists
``succ_k`` are fixed. The row index of ``G_k`` is ``s * A_k + a``, that of ``H_k`` is
``(s * A_k + a) * B_k + b`` (B_k the game's successor-list width), that of ``J_k`` is s.

Features are what the populations share: the joint density of vehicles on a road cell, the
predators' density where a prey stands, the infected mass of every age group. Each type keeps
its own states and actions; the features map every type's distribution into the common
quantities. Transitions that depend on the features (capture, infection) make the flow
equations bilinear; :mod:`reference_solvers.discrete.complementarity` solves the equilibrium's
complementarity system by an interior-point Newton method, after checking the declaration
against the game's own rewards and transitions, and the exact exploitability certifies the result.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


def _csr(matrix, shape, what):
    if matrix is None:
        return None
    m = sp.csr_matrix(matrix, dtype=np.float64)
    if m.shape != shape:
        raise ValueError(f"AffineCoupling: {what} has shape {m.shape}, expected {shape}")
    return m


@dataclass(frozen=True)
class AffineCoupling:
    """The declaration (see the module docstring). Per population k (tuples of length K):
    ``features[k]`` F_k (n_features x S_k), ``reward[k]`` G_k (S_k A_k x n_features) or None,
    ``transition[k]`` H_k (S_k A_k B_k x n_features) or None (transitions independent of the mean
    field), ``terminal[k]`` J_k (S_k x n_features) or None, ``eta[k]`` the log-density weight per
    state (S_k,) or a number. ``terminal_log`` says whether the terminal reward has the log term."""

    features: tuple
    reward: tuple
    transition: tuple
    terminal: tuple
    eta: tuple
    eps: float = 1e-12
    terminal_log: bool = False

    @classmethod
    def build(cls, populations, widths, features, reward=None, transition=None, terminal=None, eta=None,
              eps: float = 1e-12, terminal_log: bool = False) -> "AffineCoupling":
        """Checked construction from the game's populations and successor-list widths ``widths[k]``;
        every argument but ``features`` may be omitted (no such term)."""
        K = len(populations)
        none = (None,) * K
        reward, transition, terminal = reward or none, transition or none, terminal or none
        eta = eta if eta is not None else (0.0,) * K
        if not (len(features) == len(reward) == len(transition) == len(terminal) == len(eta) == len(widths) == K):
            raise ValueError(f"AffineCoupling: give one entry per population ({K})")
        if not eps > 0:
            raise ValueError(f"AffineCoupling: eps must be positive, got {eps!r}")
        n_features = sp.csr_matrix(features[0]).shape[0]
        F, G, H, J, E = [], [], [], [], []
        for k, pop in enumerate(populations):
            S, A = pop.n_states, pop.n_actions
            F.append(_csr(features[k], (n_features, S), f"features[{k}]"))
            G.append(_csr(reward[k], (S * A, n_features), f"reward[{k}]"))
            H.append(_csr(transition[k], (S * A * widths[k], n_features), f"transition[{k}]"))
            J.append(_csr(terminal[k], (S, n_features), f"terminal[{k}]"))
            e = np.broadcast_to(np.asarray(eta[k], dtype=np.float64), (S,)).copy()
            if not (np.isfinite(e).all() and (e >= 0).all()):
                raise ValueError(f"AffineCoupling: eta[{k}] must be finite and >= 0")
            E.append(e)
        return cls(tuple(F), tuple(G), tuple(H), tuple(J), tuple(E), float(eps), bool(terminal_log))

    @property
    def n_features(self) -> int:
        return self.features[0].shape[0]

    @property
    def static_transitions(self) -> bool:
        return all(h is None or h.nnz == 0 for h in self.transition)

    def phi(self, mus) -> np.ndarray:
        """The features ``phi = sum_j F_j mu_j`` (``mus[j][..., s]``: any leading axes, e.g. time)."""
        return sum(np.asarray(m) @ F.T for F, m in zip(self.features, mus))

    def log_term(self, k: int, mu_k) -> np.ndarray:
        """``-eta_k(s) log(mu_k(s) + eps)`` (0 where eta is 0)."""
        e = self.eta[k]
        return np.where(e > 0, -e * np.log(np.asarray(mu_k) + self.eps), 0.0)

    def reward_terms(self, k: int, mus, n_actions: int) -> np.ndarray:
        """The mean-field part of ``R_k`` as ``[..., s, a]`` from every population's ``mus[j][..., s]``."""
        mu_k = np.asarray(mus[k])
        out = np.broadcast_to(self.log_term(k, mu_k)[..., None], mu_k.shape + (n_actions,)).copy()
        if self.reward[k] is not None:
            phi = self.phi(mus)
            out += (phi @ self.reward[k].T).reshape(mu_k.shape + (n_actions,))
        return out

    def transition_terms(self, k: int, mus, shape) -> np.ndarray | None:
        """The mean-field part of population k's probabilities, ``(H_k phi)`` as ``[..., s, a, b]``."""
        if self.transition[k] is None:
            return None
        phi = self.phi(mus)
        return (phi @ self.transition[k].T).reshape(phi.shape[:-1] + tuple(shape))

    def terminal_terms(self, k: int, mus) -> np.ndarray:
        """The mean-field part of the terminal reward ``g_k`` from the distributions at T."""
        mu_k = np.asarray(mus[k])
        out = self.log_term(k, mu_k) if self.terminal_log else np.zeros(mu_k.shape)
        if self.terminal[k] is not None:
            out = out + self.phi(mus) @ self.terminal[k].T
        return out
