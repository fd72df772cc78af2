"""The weight cache (ops_cuda/weight_cache.py): results derived from frozen parameters are reused
between forwards, never reused after the parameter changes, never kept for anything else, and a
generator under the cache renders exactly what it renders without it."""

from __future__ import annotations

import gc

import torch

import ops_cuda
from bench.generator import make_generator
from ops_cuda.weight_cache import WeightCache, cached_weights, derived


def _counting(value: torch.Tensor):
    calls = []

    def make():
        calls.append(1)
        return value.clone()

    return make, calls


def test_derived_is_computed_once_per_parameter_and_key():
    weight = torch.nn.Parameter(torch.randn(4, 4), requires_grad=False)
    make, calls = _counting(weight * 2)
    cache = WeightCache()
    with cached_weights(cache):
        first = derived(weight, "double", make)
        again = derived(weight, "double", make)
        derived(weight, "other key", make)
    assert len(calls) == 2 and again is first and len(cache) == 2
    derived(weight, "double", make)  # outside the block: no cache
    assert len(calls) == 3


def test_an_in_place_change_of_the_weight_invalidates_its_entries():
    weight = torch.nn.Parameter(torch.ones(3), requires_grad=False)
    cache = WeightCache()
    with cached_weights(cache):
        assert derived(weight, "sum", lambda: weight.sum()).item() == 3
        with torch.no_grad():
            weight.mul_(2)  # as an optimizer step or load_state_dict would
        assert derived(weight, "sum", lambda: weight.sum()).item() == 6
    assert len(cache) == 1


def test_only_parameters_without_a_wanted_gradient_are_cached():
    cache = WeightCache()
    plain = torch.randn(3)  # e.g. a per-sample weight formed during a forward
    trained = torch.nn.Parameter(torch.randn(3))  # requires_grad, grad mode on: training
    with cached_weights(cache):
        derived(plain, "k", lambda: plain * 2)
        derived(trained, "k", lambda: trained.detach() * 2)
        assert len(cache) == 0
        with torch.no_grad():
            derived(trained, "k", lambda: trained.detach() * 2)
    assert len(cache) == 1


def test_the_budget_is_respected_and_dead_parameters_are_dropped():
    cache = WeightCache(max_bytes=100)
    small = torch.nn.Parameter(torch.zeros(10), requires_grad=False)  # 40 bytes
    large = torch.nn.Parameter(torch.zeros(30), requires_grad=False)  # 120 bytes
    with cached_weights(cache):
        derived(small, "copy", small.clone)
        derived(large, "copy", large.clone)
    assert len(cache) == 1 and cache.nbytes == 40
    del small
    gc.collect()
    assert len(cache) == 0 and cache.nbytes == 0


def _render(G, ws, cache=None):
    with torch.no_grad():
        if cache is None:
            return G.synthesis(ws, noise_mode="const", force_fp32=True)
        with cached_weights(cache):
            return G.synthesis(ws, noise_mode="const", force_fp32=True)


def test_a_cached_generator_renders_the_same_and_follows_new_weights():
    """StyleGAN2 at 128 px with channels wide enough for Winograd (3x3 and upsampling layers),
    three forwards under one cache; then new weights are loaded and the cache must not serve the
    old ones."""
    G = make_generator("stylegan2", 128, 16384, 128)
    ws = G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(0)), None)
    cache = WeightCache()
    want = _render(G, ws)
    for _ in range(3):
        assert torch.equal(_render(G, ws, cache), want)
    kinds = {key[1] if isinstance(key[1], str) else key[1][0] for key in cache._entries}
    assert {"filter_norms", "winograd", "winograd_up2"} <= kinds
    other = make_generator("stylegan2", 128, 16384, 128)
    torch.manual_seed(1)
    for p in other.parameters():
        p.data.normal_()  # a different network with the same shapes
    G.load_state_dict(other.state_dict())
    new = _render(G, ws, cache)
    assert torch.equal(new, _render(G, ws))
    assert (new - want).abs().max().item() > 1e-2


def test_renderer_keeps_a_weight_cache():
    from gan.model_io import LoadedModel
    from gan.render import RenderArgs, Renderer

    G = make_generator("stylegan2", 128, 16384, 128)
    renderer = Renderer(
        LoadedModel(G=G, arch="stylegan2", g_kwargs={}, metadata={}, source="test", sha256="")
    )
    first = renderer.render(RenderArgs(seed=3))
    assert first.error is None and len(renderer.weight_cache) > 0
    assert (renderer.render(RenderArgs(seed=3)).image == first.image).all()
    assert ops_cuda.WeightCache is WeightCache
