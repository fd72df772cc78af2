"""The one render boundary: plain data in (`RenderArgs`), plain data out (`RenderResult`).

`Renderer.render` never raises: any problem becomes `RenderResult.error`. It is deterministic for
fixed arguments (seeds become z through `np.random.RandomState(seed).randn(1, z_dim)`, as the
official tools do). Two caches make interactive use fast:

- mapping outputs per (z, class, psi, cutoff), a small LRU;
- synthesis activations per stage (see `gan.synthesis_stages`), keyed by the exact bytes of the
  ws prefix that stage reads plus the input transform and noise mode, so an edit or style mix
  from layer k onward re-runs only the stages that read ws[k:].

and the ops keep what they derive from the (frozen) weights between renders: demodulation norms,
Winograd-transformed weights (`ops_cuda.WeightCache`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace

import numpy as np
import torch

import ops_cuda
from gan.synthesis_stages import State, SynthesisStages

log = logging.getLogger(__name__)

NOISE_MODES = ("const", "random", "none")
MAX_SEED = 2**32 - 1


class RenderError(ValueError):
    """Arguments that do not fit the model; the message is shown to the user as is."""


@dataclass(eq=False)
class Edit:
    direction: np.ndarray  # Direction in W: [w_dim] (same for every w) or [num_ws, w_dim].
    strength: float = 1.0  # Multiple of the direction added to the ws.
    layer_start: int = 0  # First w index the edit applies to.
    layer_end: int | None = None  # One past the last w index; None = num_ws.
    name: str = ""  # Name of the direction, for recipes and display.


@dataclass(eq=False)
class RenderArgs:
    seed: int = 0  # Latent seed (0 .. 2**32-1); used when z and w are None.
    z: list[float] | np.ndarray | None = None  # Explicit z [z_dim]; used instead of seed when w is None.
    # Explicit w, [num_ws, w_dim] or [w_dim]; used as is (no mapping, psi or class).
    w: np.ndarray | None = None
    class_idx: int | None = None  # Class of a conditional model; ignored otherwise.
    psi: float = 1.0  # Truncation psi: 1 = none, 0 = the average w.
    truncation_cutoff: int | None = None  # Truncate only the first this many ws; None = all.
    noise_mode: str = "const"  # Per-pixel noise: 'const', 'random' or 'none'.
    # Input translation (x, y), in units of the image size (StyleGAN3 Fourier features or the
    # StyleGAN2 4x4 constant).
    translate: tuple[float, float] = (0.0, 0.0)
    rotate: float = 0.0  # Input rotation in degrees (StyleGAN2 or 3).
    mix_seed: int | None = None  # Style-mix seed; its ws replace ws[mix_start:mix_end].
    mix_start: int = 0  # First w index taken from the mix seed.
    mix_end: int | None = None  # One past the last mixed w index; None = num_ws.
    edits: list[Edit] = field(default_factory=list)  # Latent edits, applied in order after mixing.
    # StyleGAN2 noise buffers (full name, e.g. 'synthesis.b8.conv0.noise_const' -> [H, W]) used
    # instead of the model's own with noise_mode 'const': a projection's optimised noise.
    noise: dict[str, np.ndarray] | None = None


@dataclass
class CacheInfo:
    mapping_hits: int = 0  # mapping results taken from the cache (main seed and mix seed)
    mapping_misses: int = 0
    stages_reused: int = 0  # synthesis stages skipped thanks to a cached activation
    stages_run: int = 0
    stages_total: int = 0


@dataclass(eq=False)
class RenderResult:
    image: np.ndarray | None = None  # uint8 [H, W, 3]
    w: np.ndarray | None = None  # final ws [num_ws, w_dim] float32 (after truncation, mixing, edits)
    timings: dict[str, float] = field(default_factory=dict)  # ms: mapping, synthesis, total
    cache_hits: CacheInfo = field(default_factory=CacheInfo)
    error: str | None = None


@dataclass(eq=False)
class EquivarianceView:
    """Renderer.equivariance_view: uint8 [H, W, 3] images, or an error saying why there are none."""

    image: np.ndarray | None = None  # error map: |reference - transformed|, amplified
    reference: np.ndarray | None = None  # the plain render moved in output space
    transformed: np.ndarray | None = None  # the render of the moved input
    psnr: float | None = None  # dB, over the pixels both images cover; inf when equal
    error: str | None = None


def seed_to_z(seed: int, z_dim: int) -> np.ndarray:
    """The official seed -> z rule, as float32 [z_dim] (the mapping network casts to float32 anyway)."""
    if not 0 <= int(seed) <= MAX_SEED:
        raise RenderError(f"seed {seed} is out of range 0 .. {MAX_SEED}")
    return np.random.RandomState(int(seed)).randn(1, z_dim)[0].astype(np.float32)


def input_transform_matrix(translate: tuple[float, float], rotate_deg: float) -> np.ndarray:
    """The input transform (StyleGAN3 convention, also used for StyleGAN2) for a translation and
    rotation, built like the official StyleGAN3 tools:
    m = [[cos, sin, tx], [-sin, cos, ty], [0, 0, 1]], then inverted (float64)."""
    angle = rotate_deg / 360.0 * 2.0 * math.pi
    s, c = math.sin(angle), math.cos(angle)
    m = np.array([[c, s, translate[0]], [-s, c, translate[1]], [0.0, 0.0, 1.0]], dtype=np.float64)
    return np.linalg.inv(m)


def _state_bytes(state: State) -> int:
    return sum(t.numel() * t.element_size() for t in state if t is not None)


def _clone_state(state: State | None) -> State | None:
    return None if state is None else tuple(None if t is None else t.clone() for t in state)


class _Lru:
    """Least-recently-used map bounded by item count and by total size (bytes)."""

    def __init__(self, max_items: int, max_bytes: int | None = None):
        self.max_items, self.max_bytes = max_items, max_bytes
        self._items: OrderedDict = OrderedDict()
        self._bytes = 0

    def get(self, key):
        if key not in self._items:
            return None
        self._items.move_to_end(key)
        return self._items[key][0]

    def put(self, key, value, size: int = 0) -> None:
        if self.max_bytes is not None and size > self.max_bytes:
            return
        if key in self._items:
            self._bytes -= self._items.pop(key)[1]
        self._items[key] = (value, size)
        self._bytes += size
        while len(self._items) > self.max_items or (
            self.max_bytes is not None and self._bytes > self.max_bytes
        ):
            self._bytes -= self._items.popitem(last=False)[1][1]

    def clear(self) -> None:
        self._items.clear()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)


class Renderer:
    def __init__(
        self,
        model,  # gan.model_io.LoadedModel
        device: str | torch.device = "cpu",
        mapping_cache_items: int = 64,
        activation_cache_bytes: int = 512 * 2**20,
        force_fp32: bool = True,
        weight_cache_bytes: int = 256 * 2**20,
    ):
        ops_cuda.allocator.keep_freed_memory()  # no page faults for every forward's buffers
        self.model = model
        self.device = torch.device(device)
        self.G = model.G.to(self.device).eval()
        self.stages = SynthesisStages(self.G.synthesis)
        self.force_fp32 = force_fp32
        self._mapping_cache = _Lru(mapping_cache_items)
        self._stage_cache = _Lru(max_items=10_000, max_bytes=activation_cache_bytes)
        self.weight_cache = ops_cuda.WeightCache(max_bytes=weight_cache_bytes)

    def _inference(self) -> contextlib.ExitStack:
        """No gradients, the weight cache active."""
        stack = contextlib.ExitStack()
        stack.enter_context(torch.no_grad())
        stack.enter_context(ops_cuda.cached_weights(self.weight_cache))
        return stack

    def map_z(self, z: np.ndarray, args: RenderArgs) -> np.ndarray:
        """ws [num_ws, w_dim] float32 of z with the class and truncation of args (cached, the same
        mapping a render of z uses); RenderError when the class or cutoff does not fit."""
        with self._inference():
            return self._mapped(np.asarray(z, dtype=np.float32), args, CacheInfo())[0].cpu().numpy()

    def map_seed(self, seed: int, args: RenderArgs) -> np.ndarray:
        """map_z of the seed's z (seed_to_z)."""
        return self.map_z(seed_to_z(seed, self.G.z_dim), args)

    def equivariance_view(self, args: RenderArgs) -> EquivarianceView:
        """The render of args' input transform against the plain render moved the same way in
        output space (the StyleGAN3 paper's EQ-T / EQ-R comparison, for one latent). Never raises."""
        try:
            with self._inference():
                return self._equivariance_view(args)
        except RenderError as exc:
            return EquivarianceView(error=str(exc))
        except Exception as exc:  # the boundary never raises; the caller shows the text
            log.exception("equivariance view failed")
            return EquivarianceView(error=f"{type(exc).__name__}: {exc}")

    def render(self, args: RenderArgs) -> RenderResult:
        t0 = time.perf_counter()
        result = RenderResult()
        try:
            with self._inference():
                self._render(args, result)
        except RenderError as exc:
            result.error = str(exc)
        except Exception as exc:  # the boundary never raises; the caller shows the text
            log.exception("render failed")
            result.error = f"Rendering failed: {type(exc).__name__}: {exc}"
        if result.error is not None:
            result.image = None
        result.timings["total"] = (time.perf_counter() - t0) * 1000.0
        return result

    # -- steps -------------------------------------------------------------------------------

    def _render(self, args: RenderArgs, result: RenderResult) -> None:
        G, info = self.G, result.cache_hits
        if args.noise_mode not in NOISE_MODES:
            raise RenderError(f"noise mode {args.noise_mode!r} is not one of {', '.join(NOISE_MODES)}")
        transform = self._input_transform(args)

        t0 = time.perf_counter()
        ws = self._base_ws(args, info)
        if args.mix_seed is not None:
            start, end = self._layer_range(args.mix_start, args.mix_end, "style mix")
            mix = self._mapped(seed_to_z(args.mix_seed, G.z_dim), args, info)
            ws[:, start:end] = mix[:, start:end]
        for edit in args.edits:
            self._apply_edit(ws, edit)
        result.timings["mapping"] = (time.perf_counter() - t0) * 1000.0

        t0 = time.perf_counter()
        with self._noise_override(args.noise) as noise_tag:
            img = self._synthesize(ws, transform, args.noise_mode, info, noise_tag)
        img = (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].cpu().numpy()
        result.timings["synthesis"] = (time.perf_counter() - t0) * 1000.0
        if img.shape[2] == 1:
            img = np.repeat(img, 3, axis=2)
        result.image = np.ascontiguousarray(img[:, :, :3])
        result.w = ws[0].cpu().numpy()

    def _input_transform(self, args: RenderArgs) -> np.ndarray | None:
        tx, ty = (float(v) for v in args.translate)
        if tx == 0 and ty == 0 and float(args.rotate) == 0:
            return None  # the network's own transform buffer, so plain renders equal G.synthesis(ws)
        # StyleGAN3 moves its Fourier-feature input; StyleGAN2 resamples its 4x4 constant (same matrix,
        # same direction), though its noise and padding stay put, so details "stick" to the screen.
        return input_transform_matrix((tx, ty), float(args.rotate))

    def _base_ws(self, args: RenderArgs, info: CacheInfo) -> torch.Tensor:
        """[1, num_ws, w_dim] float32, a fresh tensor the caller may modify."""
        G = self.G
        if args.w is not None:
            w = np.asarray(args.w, dtype=np.float32)
            if w.shape == (G.w_dim,):
                w = np.broadcast_to(w, (G.num_ws, G.w_dim))
            if w.shape != (G.num_ws, G.w_dim):
                raise RenderError(
                    f"w has shape {list(w.shape)}; this model needs [{G.num_ws}, {G.w_dim}] or [{G.w_dim}]"
                )
            return torch.from_numpy(np.array(w, dtype=np.float32))[None].to(self.device)
        if args.z is not None:
            z = np.asarray(args.z, dtype=np.float32).reshape(-1)
            if z.shape != (G.z_dim,):
                raise RenderError(f"z has {z.size} values; this model needs {G.z_dim}")
        else:
            z = seed_to_z(args.seed, G.z_dim)
        return self._mapped(z, args, info)

    def _mapped(self, z: np.ndarray, args: RenderArgs, info: CacheInfo) -> torch.Tensor:
        """Mapping output for z with the class and truncation of args (cached); returns a copy."""
        G = self.G
        class_idx = None
        if G.c_dim > 0:
            if args.class_idx is None or not 0 <= int(args.class_idx) < G.c_dim:
                raise RenderError(f"this model is conditional: choose a class from 0 to {G.c_dim - 1}")
            class_idx = int(args.class_idx)
        cutoff = None if args.truncation_cutoff is None else int(args.truncation_cutoff)
        if cutoff is not None and not 0 <= cutoff <= G.num_ws:
            raise RenderError(f"truncation cutoff {cutoff} must be between 0 and {G.num_ws} for this model")
        key = (z.tobytes(), class_idx, float(args.psi), cutoff)
        ws = self._mapping_cache.get(key)
        if ws is None:
            info.mapping_misses += 1
            c = torch.zeros([1, G.c_dim], device=self.device)
            if class_idx is not None:
                c[0, class_idx] = 1
            z_t = torch.from_numpy(z)[None].to(self.device)
            ws = G.mapping(z_t, c, truncation_psi=float(args.psi), truncation_cutoff=cutoff)
            self._mapping_cache.put(key, ws)
        else:
            info.mapping_hits += 1
        return ws.clone()

    def _layer_range(self, start: int, end: int | None, what: str) -> tuple[int, int]:
        num_ws = self.G.num_ws
        end = num_ws if end is None else int(end)
        if not 0 <= int(start) <= end <= num_ws:
            raise RenderError(f"{what} layer range {start}..{end} does not fit this model's {num_ws} ws")
        return int(start), end

    def _apply_edit(self, ws: torch.Tensor, edit: Edit) -> None:
        G = self.G
        start, end = self._layer_range(edit.layer_start, edit.layer_end, f"edit {edit.name!r}")
        d = np.asarray(edit.direction, dtype=np.float32)
        if d.shape == (G.num_ws, G.w_dim):
            d = d[start:end]
        elif d.shape != (G.w_dim,):
            raise RenderError(
                f"direction {edit.name!r} has shape {list(d.shape)}; this model needs [{G.w_dim}] "
                f"or [{G.num_ws}, {G.w_dim}]"
            )
        ws[:, start:end] += torch.from_numpy(np.ascontiguousarray(d)).to(self.device) * float(edit.strength)

    @contextlib.contextmanager
    def _noise_override(self, noise: dict[str, np.ndarray] | None):
        """Swap the given noise buffers into the generator for one render, then restore its own.
        Yields a digest of the noise for the activation cache keys (None without noise)."""
        if not noise:
            yield None
            return
        buffers = dict(self.G.named_buffers())
        for name, value in noise.items():
            shape = tuple(np.shape(value))
            if name not in buffers or not name.endswith("noise_const"):
                raise RenderError(f"this model has no noise buffer {name!r}; the noise is another model's")
            if shape != tuple(buffers[name].shape):
                raise RenderError(
                    f"noise buffer {name} has shape {list(shape)}; the model's is {list(buffers[name].shape)}"
                )
        hasher = hashlib.blake2b(digest_size=20)
        saved = {}
        try:
            for name in sorted(noise):
                value = np.ascontiguousarray(noise[name], dtype=np.float32)
                hasher.update(name.encode() + value.tobytes())
                saved[name] = buffers[name].clone()
                buffers[name].copy_(torch.from_numpy(value))
            yield hasher.digest()
        finally:
            for name, value in saved.items():
                buffers[name].copy_(value)

    def _synthesize(
        self,
        ws: torch.Tensor,
        transform: np.ndarray | None,
        noise_mode: str,
        info: CacheInfo,
        noise_tag: bytes | None = None,
    ):
        stages = self.stages
        transform_t = None
        if transform is not None:
            transform_t = torch.from_numpy(transform).to(torch.float32)[None].to(self.device)
        kwargs = dict(noise_mode=noise_mode, force_fp32=self.force_fp32)

        # Random noise differs per call, so nothing of it may be reused.
        use_cache = noise_mode != "random"
        keys: list = []
        if use_cache:
            flat = ws[0].detach().cpu().numpy()
            tag = (None if transform is None else transform.tobytes(), noise_mode, noise_tag)
            hasher, done = hashlib.blake2b(digest_size=20), 0
            for end in stages.ws_end:
                hasher.update(flat[done:end].tobytes())
                done = end
                keys.append((end, hasher.copy().digest(), tag))

        state, first = None, 0
        if use_cache:
            for index in reversed(range(stages.num_stages)):
                cached = self._stage_cache.get(keys[index])
                if cached is not None:
                    state, first = cached, index + 1
                    break
        info.stages_total = stages.num_stages
        info.stages_reused = first
        for index in range(first, stages.num_stages):
            # Stages get copies, so cached tensors stay intact even if a layer works in place.
            state = stages.run_stage(index, _clone_state(state), ws, transform_t, **kwargs)
            info.stages_run += 1
            if use_cache:
                self._stage_cache.put(keys[index], state, _state_bytes(state))
        return stages.finish(_clone_state(state))

    def _equivariance_view(self, args: RenderArgs) -> EquivarianceView:
        from gan.metrics import equivariance as eq

        G = self.G
        if not eq.has_input_transform(G):
            return EquivarianceView(
                error="The equivariance view needs a StyleGAN2 or StyleGAN3 model (an input to move)."
            )
        tx, ty = (float(v) for v in args.translate)
        angle_deg = float(args.rotate)
        if tx == 0 and ty == 0 and angle_deg == 0:
            return EquivarianceView(error="Translate or rotate the input to see the equivariance error.")
        plain = self.render(replace(args, translate=(0.0, 0.0), rotate=0.0))
        if plain.error:
            return EquivarianceView(error=plain.error)
        ws = torch.from_numpy(plain.w)[None].to(self.device)
        m = input_transform_matrix((tx, ty), angle_deg)  # what the network's input gets
        transforms = torch.stack([torch.eye(3), torch.from_numpy(m).float()]).to(self.device)
        # Both renders need the same noise.
        noise = "const" if args.noise_mode == "random" else args.noise_mode
        with self._noise_override(args.noise):
            images = G.synthesis(
                ws.repeat(2, 1, 1), noise_mode=noise, force_fp32=True, input_transform=transforms
            )
        images = images.float().cpu()
        orig, out = images[:1], images[1:]
        res = orig.shape[-1]
        a = 3
        if angle_deg == 0:
            ref, mask = eq.fractional_translate(orig, tx * res, ty * res, a)
            got = out
        else:
            forward = torch.from_numpy(np.linalg.inv(m))  # the output-space move of the same transform
            ref, ref_mask = eq.affine_warp(orig, forward, up=4, a=a, amax=2 * a)
            got, got_mask = eq.pseudo_rotate(out, math.radians(angle_deg), a)
            mask = ref_mask * got_mask
        count = float(mask.sum())
        if count == 0:
            return EquivarianceView(
                error="The transform moves the image out of view: nothing left to compare."
            )
        mse = float(((ref - got).square() * mask).sum()) / count
        psnr = float("inf") if mse == 0 else 10.0 * math.log10(4.0 / mse)
        # Error map: absolute error (0..2) amplified 4x, masked-out border dimmed blue.
        e = ((ref - got).abs().mean(1)[0] * mask[0, 0]).numpy()
        e8 = np.clip(e * 4.0 * 127.5, 0, 255).astype(np.uint8)
        img = np.stack([e8, e8, e8], axis=-1)
        img[mask[0, 0].numpy() == 0] = (20, 24, 60)
        return EquivarianceView(
            image=np.ascontiguousarray(img), psnr=psnr, reference=_to_uint8(ref), transformed=_to_uint8(got)
        )


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    """The first image of a [N, C, H, W] batch in [-1, 1] as uint8 [H, W, 3]."""
    img = (images[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3])
