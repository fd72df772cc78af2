"""Interpolation between latents: linear (for W) and spherical (for Gaussian Z)."""

from __future__ import annotations

import numpy as np


def lerp(a: np.ndarray, b: np.ndarray, t: float | np.ndarray) -> np.ndarray:
    """a + t * (b - a); t may be an array of shape [T] for T steps (result [T, *a.shape])."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    t = np.asarray(t, np.float64)
    t = t.reshape(t.shape + (1,) * a.ndim)
    return (a + t * (b - a)).astype(np.float32)


def slerp(a: np.ndarray, b: np.ndarray, t: float | np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """Spherical interpolation of the last axis: follows the great circle between the directions
    of a and b, with the norm interpolated linearly. Keeps Gaussian z at a typical length, where a
    straight line between two z would pass through the unlikely region near the origin."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    t = np.asarray(t, np.float64)
    t = t.reshape(t.shape + (1,) * a.ndim)
    na = np.linalg.norm(a, axis=-1, keepdims=True)
    nb = np.linalg.norm(b, axis=-1, keepdims=True)
    ua, ub = a / np.maximum(na, eps), b / np.maximum(nb, eps)
    cos = np.clip((ua * ub).sum(axis=-1, keepdims=True), -1.0, 1.0)
    omega = np.arccos(cos)
    so = np.sin(omega)
    near = so < 1e-6  # (anti)parallel: the great circle is undefined, fall back to lerp of the units
    safe = np.where(near, 1.0, so)
    wa = np.where(near, 1 - t, np.sin((1 - t) * omega) / safe)
    wb = np.where(near, t, np.sin(t * omega) / safe)
    unit = wa * ua + wb * ub
    unit = unit / np.maximum(np.linalg.norm(unit, axis=-1, keepdims=True), eps)
    return (unit * (na + t * (nb - na))).astype(np.float32)
