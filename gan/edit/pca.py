"""GANSpace-style PCA directions: principal components of the W distribution.

Sample z ~ N(0, I) (and a random class for conditional models), map to w, fit a PCA
(scikit-learn) and turn the top components into directions, ordered by explained variance.
Each direction is the unit component; its slider unit (`scale`) is the component's standard
deviation, so "+1" moves a typical sample by one standard deviation along it.

Layer ranges (GANSpace applies each component to chosen layers; we use one simple rule): the
components are split into three equal groups by rank. The first third (largest variance:
pose, face shape, overall style) act on the coarse ws [0, ceil(num_ws/2)), the middle third on
the middle ws [floor(num_ws/4), ceil(3*num_ws/4)), the last third on the fine ws
[floor(num_ws/2), num_ws). The range can be changed per slider in the explorer.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from gan.edit.directions import Direction
from gan.errors import Cancelled, UserError
from gan.progress import Progress


def default_layer_range(rank: int, num_components: int, num_ws: int) -> tuple[int, int]:
    """w index range [start, end) of the component of the given rank (see the module docstring)."""
    group = min(2, (3 * rank) // max(num_components, 1))
    if group == 0:
        return 0, max(1, math.ceil(num_ws / 2))
    if group == 1:
        return num_ws // 4, max(num_ws // 4 + 1, math.ceil(3 * num_ws / 4))
    return min(num_ws // 2, num_ws - 1), num_ws


@torch.no_grad()
def sample_w(
    G: torch.nn.Module,
    num_samples: int,
    seed: int = 0,
    batch_size: int = 1000,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> np.ndarray:
    """num_samples ws [N, w_dim] float32 from z ~ N(0, I) (random one-hot classes if conditional),
    without truncation. progress(done, total) after each batch; should_stop() is polled before."""
    gen = torch.Generator().manual_seed(int(seed))
    device = next(G.mapping.parameters()).device
    out = []
    done = 0
    while done < num_samples:
        if should_stop is not None and should_stop():
            raise Cancelled("sampling W was stopped")
        n = min(batch_size, num_samples - done)
        z = torch.randn([n, G.z_dim], generator=gen)
        c = torch.zeros([n, G.c_dim])
        if G.c_dim > 0:
            c[torch.arange(n), torch.randint(0, G.c_dim, (n,), generator=gen)] = 1
        ws = G.mapping(z.to(device), c.to(device), truncation_psi=1)
        out.append(ws[:, 0].float().cpu().numpy())
        done += n
        if progress is not None:
            progress(done, num_samples)
    return np.concatenate(out)


def compute_pca_directions(
    G: torch.nn.Module,
    num_samples: int = 10000,
    num_components: int = 20,
    seed: int = 0,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[Direction]:
    """The top `num_components` principal directions of W as Directions named 'pc0', 'pc1', ...

    progress(done, total) counts sampled ws (the PCA fit itself is one short final step);
    should_stop() is polled between batches and raises gan.errors.Cancelled when it says True."""
    from sklearn.decomposition import PCA

    w_dim = int(G.w_dim)
    if num_components < 1 or num_components > w_dim:
        raise UserError(f"the number of components must be from 1 to w_dim = {w_dim}, not {num_components}")
    if num_samples < 2 * num_components or num_samples < 10:
        raise UserError(
            f"{num_samples} samples are too few for {num_components} components; use at least "
            f"{max(10, 2 * num_components)} (GANSpace uses 10^4 or more)"
        )
    ws = sample_w(G, num_samples, seed=seed, progress=progress, should_stop=should_stop)
    if should_stop is not None and should_stop():
        raise Cancelled("PCA was stopped")
    solver = "full" if w_dim <= 1024 else "randomized"
    pca = PCA(n_components=num_components, svd_solver=solver, random_state=int(seed)).fit(
        ws.astype(np.float64)
    )
    num_ws = int(G.num_ws)
    total_var = float(np.var(ws, axis=0).sum())
    directions = []
    for rank, (component, variance) in enumerate(zip(pca.components_, pca.explained_variance_)):
        v = component / np.linalg.norm(component)
        v = v * np.sign(v[np.argmax(np.abs(v))])  # fixed sign: the largest entry is positive
        start, end = default_layer_range(rank, num_components, num_ws)
        share = 100 * float(variance) / max(total_var, 1e-30)
        directions.append(
            Direction(
                name=f"pc{rank}",
                kind="pca",
                vector=v.astype(np.float32),
                layer_start=start,
                layer_end=end,
                scale=float(math.sqrt(max(float(variance), 1e-30))),
                help=f"PCA component {rank} of W ({share:.1f}% of the variance, {num_samples} samples); "
                f"acts on ws {start}..{end - 1}",
            )
        )
    return directions
