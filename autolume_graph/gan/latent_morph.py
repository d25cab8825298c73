"""How a latent crosses into another during a preset morph (autolume_graph/morph.py): along the sphere.

Two single z terms of one kind slerp, so the norm (and with it the look a Gaussian z gives) holds all the
way; anything else (per-layer w, blends of several terms, mixed Project flags) is a weighted blend of both
latents' terms, which the Mapping node sums in w, as the keyframe loops do.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from autolume_graph.gan.latent_value import Latent, LatentTerm

PARALLEL = 1e-6  # below this angle (radians) the two are one direction: a straight blend is exact enough


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """From `a` (t=0) to `b` (t=1) along the great circle, the norm blended linearly between theirs."""
    a64, b64 = a.to(torch.float64).flatten(), b.to(torch.float64).flatten()
    na, nb = float(a64.norm()), float(b64.norm())
    if na == 0.0 or nb == 0.0:
        return torch.lerp(a64, b64, t).reshape(a.shape).to(a.dtype)
    cos = min(max(float(a64 @ b64) / (na * nb), -1.0), 1.0)
    angle = math.acos(cos)
    if angle < PARALLEL:
        direction = torch.lerp(a64 / na, b64 / nb, t)
    else:
        direction = (math.sin((1 - t) * angle) * a64 / na + math.sin(t * angle) * b64 / nb) / math.sin(angle)
    return (direction * ((1 - t) * na + t * nb)).reshape(a.shape).to(a.dtype)


def morph_latent(start: Latent, end: Latent, t: float) -> Latent:
    """The latent a fraction `t` of the way from `start` to `end`."""
    if t <= 0.0:
        return start
    if t >= 1.0:
        return end
    if len(start.terms) == len(end.terms) == 1:
        a, b = start.terms[0], end.terms[0]
        if (a.kind, a.project, a.coef, a.value.shape) == (b.kind, b.project, b.coef, b.value.shape):
            return Latent((LatentTerm(a.coef, slerp(a.value, b.value, t), a.kind, a.project),))
    return Latent(tuple(LatentTerm(term.coef * (1 - t), term.value, term.kind, term.project) for term in start.terms)
                  + tuple(LatentTerm(term.coef * t, term.value, term.kind, term.project) for term in end.terms))


def morph_latent_outputs(start: dict[str, Any], now: dict[str, Any], t: float, prepared: Any = None
                         ) -> dict[str, Any]:
    """A latent node's outputs in a morph (Role.MORPHS_OUTPUTS): each latent from what it sent at the start
    into what it sends now; its other outputs (a seed number) are what it sends now."""
    return {port: morph_latent(start[port], value, t)
            if isinstance(value, Latent) and isinstance(start.get(port), Latent) else value
            for port, value in now.items()}
