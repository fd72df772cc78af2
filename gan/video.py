"""MP4 videos from a generator: frame sources and an atomic H.264 writer.

    job = VideoJob(kind="rotate", seeds=[3], fps=30, duration=4)
    result = render_video(job, load_model("model.safetensors"), "spin.mp4", progress=print)

Frame sources (all loop seamlessly: frame N would equal frame 0, so it is not rendered):

- rotate:    input rotation 0..360 degrees (StyleGAN2 too: its 4x4 constant turns);
- translate: input translation around a circle or back and forth along x;
- interp:    through a list of seeds and back to the first, slerp in Z or lerp in W;
- sweep:     one direction's strength -s .. +s .. -s (a cosine) over a layer range.

Frames come from `gan.render.Renderer`, so the base view (seed or w, psi, style mix, edits,
transform) is any `RenderArgs`, e.g. the explorer's current view.
Small models can be upscaled by an integer factor, with hard pixels (nearest) or smoothly
(Lanczos). `job_warnings` says when a video will look broken for reasons of the model, e.g. the
rotation loop of a model not built for rotation (only StyleGAN3-R is).

The encoder is imageio-ffmpeg's `write_frames` with its bundled ffmpeg (libx264, yuv420p). It
writes to a hidden temporary file next to the target, which is read back (frame count and size)
and only then renamed over the target: the MP4 is complete or absent, also on cancel, error or a
full disk.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from gan import config_help
from gan.config_help import opt
from gan.errors import Cancelled, UserError
from gan.io.files import create_temp_file
from gan.progress import Progress
from gan.render import Edit, RenderArgs, Renderer, RenderError, seed_to_z

KINDS = ("rotate", "translate", "interp", "sweep")
TRANSLATE_PATHS = ("circle", "line")
INTERP_SPACES = ("z", "w")
UPSCALE_FILTERS = ("nearest", "smooth")
NOISE_MODES = ("const", "random", "none")
MAX_FRAMES = 100_000  # guards against typos like --duration 40000
MAX_UPSCALE = 16
ARCH_LABELS = {"stylegan2": "StyleGAN2", "stylegan3-t": "StyleGAN3-T", "stylegan3-r": "StyleGAN3-R"}


@dataclass(eq=False)
class VideoJob:
    """What to render and how to encode it. `validate()` checks the values on their own;
    `render_video` also checks them against the model."""

    kind: str = opt("rotate", "rotate (SG3 rotation loop), translate (SG3 translation loop), interp, sweep")
    view: RenderArgs | None = opt(
        None,
        "base view (latent, psi, edits, transform), e.g. a PNG recipe's args; "
        "None = seeds[0] with psi, class_idx and noise_mode below",
    )
    seeds: list[int] = field(
        default_factory=lambda: [0],
        metadata={"help": "interp: the seeds to pass through (2 or more, loops back); others: seeds[0]"},
    )
    psi: float = opt(1.0, "truncation psi when no view is given")
    class_idx: int | None = opt(None, "class of a conditional model (no view)")
    noise_mode: str = opt("const", "const, random or none (no view)")
    # --- source parameters ------------------------------------------------------------------
    turns: int = opt(1, "rotate: full turns per loop (negative = clockwise)")
    translate_path: str = opt("circle", "translate: circle, or line (back and forth along x)")
    translate_amount: float = opt(0.25, "translate: radius / half-width, in units of the image size")
    interp_space: str = opt("z", "interp: z (spherical interpolation) or w (linear, after mapping)")
    direction_name: str = opt("", "sweep: name of one of the model's directions (gan.edit.directions)")
    direction: np.ndarray | None = opt(
        None, "sweep: the direction itself, [w_dim] or [num_ws, w_dim]; wins over direction_name"
    )
    strength: float = opt(3.0, "sweep: the strength goes -s .. +s .. -s")
    layer_start: int = opt(0, "sweep: first w index the direction applies to")
    layer_end: int | None = opt(None, "sweep: one past the last w index; None = all")
    # --- encoder ----------------------------------------------------------------------------
    size: int | None = opt(
        None, "output width = height in pixels (even); None = the model's resolution times upscale"
    )
    upscale: int | None = opt(
        None,
        f"integer factor (1 .. {MAX_UPSCALE}) the model's resolution is scaled by, for small models "
        "(not with size); None = 1, or in a comparison video the smallest factor giving panels of at "
        "least 256 px",
    )
    upscale_filter: str = opt(
        "smooth", "how upscaled frames are drawn: smooth (Lanczos) or nearest (hard pixels)"
    )
    fps: float = opt(30.0, "frames per second (1 .. 120)")
    duration: float = opt(4.0, "length of one loop in seconds")
    crf: int = opt(18, "x264 quality: 0 = lossless .. 51 = worst; 18 looks clean, 23 is smaller")
    preset: str = opt("medium", "x264 speed/size trade-off: ultrafast .. veryslow")

    @property
    def num_frames(self) -> int:
        return int(round(self.fps * self.duration))

    def validate(self) -> None:
        _choice("kind", self.kind, KINDS)
        _choice("translate_path", self.translate_path, TRANSLATE_PATHS)
        _choice("interp_space", self.interp_space, INTERP_SPACES)
        _choice("upscale_filter", self.upscale_filter, UPSCALE_FILTERS)
        if self.preset not in PRESETS:
            raise UserError(f"x264 preset {self.preset!r} is not one of {', '.join(PRESETS)}")
        for name in ("psi", "fps", "duration", "strength", "translate_amount"):
            if not math.isfinite(float(getattr(self, name))):
                raise UserError(f"{name} must be a finite number, not {getattr(self, name)!r}")
        if not 1 <= self.fps <= 120:
            raise UserError(f"fps must be between 1 and 120, not {self.fps:g}")
        if self.duration <= 0:
            raise UserError(f"duration must be positive, not {self.duration:g} seconds")
        if self.num_frames < 2:
            raise UserError(
                f"{self.fps:g} fps for {self.duration:g} s is {self.num_frames} frame(s); a video needs at "
                "least 2: raise the fps or the duration"
            )
        if self.num_frames > MAX_FRAMES:
            raise UserError(f"{self.num_frames} frames is more than {MAX_FRAMES}; shorten the duration")
        if not 0 <= int(self.crf) <= 51:
            raise UserError(f"crf (quality) must be between 0 (best) and 51 (worst), not {self.crf}")
        if self.size is not None and (self.size < 16 or self.size > 8192 or self.size % 2):
            raise UserError(f"size must be an even number of pixels from 16 to 8192, not {self.size}")
        if self.upscale is not None:
            if int(self.upscale) != self.upscale or not 1 <= self.upscale <= MAX_UPSCALE:
                raise UserError(f"upscale must be a whole factor from 1 to {MAX_UPSCALE}, not {self.upscale}")
            if self.size is not None and self.upscale != 1:
                raise UserError(
                    f"give either an output size ({self.size} px) or an upscale factor ({self.upscale}x), "
                    "not both"
                )
        _choice("noise mode", self.noise_mode, NOISE_MODES)
        if not self.seeds:
            raise UserError("no seed given: list at least one seed")
        if self.kind == "interp" and len(self.seeds) < 2:
            raise UserError("a seed interpolation needs at least 2 seeds, e.g. 0,5,9")
        if self.kind == "rotate" and int(self.turns) == 0:
            raise UserError("turns must not be 0 for a rotation loop")
        if self.kind == "translate" and self.translate_amount <= 0:
            raise UserError(f"translate_amount must be positive, not {self.translate_amount:g}")
        if self.kind == "sweep":
            if self.direction is None and not self.direction_name:
                raise UserError("a direction sweep needs a direction: give its name or a vector file")
            if self.strength <= 0:
                raise UserError(f"sweep strength must be positive, not {self.strength:g}")


PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


def field_help(name: str) -> str:
    """Help text of a VideoJob field (for the CLI and the export dialog)."""
    return config_help.field_help(VideoJob, name)


def rotation_warning(arch: str) -> str | None:
    """Why a rotation loop of a model of this architecture looks broken (None for StyleGAN3-R)."""
    if arch == "stylegan3-r":
        return None
    label = ARCH_LABELS.get(arch, arch)
    if arch == "stylegan3-t":
        why = "is built to follow translations, not rotations: as the input turns, its details smear and melt"
    elif arch == "stylegan2":
        why = "is not equivariant: as the input turns, its details stick to the screen and the face melts"
    else:
        why = "is not known to be rotation-equivariant; the rotation may look broken"
    return (
        f"This model is {label} ({arch}), which {why}. A translation loop shows it moving as it is "
        "built to; for rotation use a StyleGAN3-R model."
    )


def job_warnings(job: VideoJob, archs: list[str]) -> list[str]:
    """What the user should know before judging the video (plain sentences)."""
    if job.kind != "rotate":
        return []
    if len(archs) == 1:
        message = rotation_warning(archs[0])
        return [message] if message else []
    weak = [ARCH_LABELS.get(a, a) for a in dict.fromkeys(archs) if a != "stylegan3-r"]
    if not weak:
        return []
    return [
        f"Only StyleGAN3-R is built for rotation: in a rotation loop the {' and '.join(weak)} panel(s) "
        "melt or stick to the screen. That is what this comparison shows; a translation loop "
        "compares the models where StyleGAN3-T should hold too."
    ]


def upscale_image(image: np.ndarray, factor: int, smooth: bool) -> np.ndarray:
    """uint8 HxWx3 image scaled by a whole factor: hard pixels (each repeated) or Lanczos."""
    if factor == 1:
        return image
    if not smooth:
        return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)
    h, w = image.shape[:2]
    return np.asarray(Image.fromarray(image).resize((w * factor, h * factor), Image.LANCZOS))


def fit_frame(image: np.ndarray, size: int, upscale: int, smooth: bool) -> np.ndarray:
    """A rendered frame as it goes into the video: upscaled, then resized to size if it differs."""
    image = upscale_image(image, upscale, smooth)
    if image.shape[0] != size or image.shape[1] != size:
        image = np.asarray(Image.fromarray(image).resize((size, size), Image.LANCZOS))
    return image


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UserError(f"{name} {value!r} is not one of {', '.join(choices)}")


@dataclass
class VideoResult:
    path: str
    frames: int
    width: int
    height: int
    fps: float
    seconds: float  # wall time of rendering and encoding
    render_ms_per_frame: float
    bytes: int
    warnings: list[str] = field(default_factory=list)  # see job_warnings


# --- frame sources -------------------------------------------------------------------------------


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation between two vectors (their norms are interpolated linearly)."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    na, nb = np.linalg.norm(a64), np.linalg.norm(b64)
    cos = float(np.clip(np.dot(a64 / na, b64 / nb), -1.0, 1.0)) if na > 0 and nb > 0 else 1.0
    theta = math.acos(cos)
    if theta < 1e-6:
        return ((1 - t) * a64 + t * b64).astype(np.float32)
    direction = (math.sin((1 - t) * theta) * a64 / na + math.sin(t * theta) * b64 / nb) / math.sin(theta)
    return (direction * ((1 - t) * na + t * nb)).astype(np.float32)


def base_args(job: VideoJob) -> RenderArgs:
    """The view every frame starts from."""
    if job.view is not None:
        return job.view
    return RenderArgs(seed=int(job.seeds[0]), psi=job.psi, class_idx=job.class_idx, noise_mode=job.noise_mode)


def _mapped_ws(renderer: Renderer, seed: int, args: RenderArgs) -> np.ndarray:
    """[num_ws, w_dim] of a seed with the base view's class and truncation."""
    try:
        return renderer.map_seed(seed, args)
    except RenderError as exc:
        raise UserError(str(exc)) from None


def frame_args(
    job: VideoJob, renderer: Renderer, direction: np.ndarray | None = None
) -> Iterator[RenderArgs]:
    """RenderArgs of every frame, in order."""
    base = base_args(job)
    n = job.num_frames
    if job.kind == "interp":
        seeds = [int(s) for s in job.seeds]
        if job.interp_space == "z":
            keys = [seed_to_z(s, renderer.G.z_dim) for s in seeds]
        else:
            keys = [_mapped_ws(renderer, s, base) for s in seeds]
    for i in range(n):
        t = i / n  # loop phase in [0, 1)
        if job.kind == "rotate":
            yield replace(base, rotate=float(base.rotate) + 360.0 * int(job.turns) * t)
        elif job.kind == "translate":
            r, angle = float(job.translate_amount), 2 * math.pi * t
            dx, dy = (
                (r * math.cos(angle), r * math.sin(angle))
                if job.translate_path == "circle"
                else (
                    r * math.sin(angle),
                    0.0,
                )
            )
            x0, y0 = (float(v) for v in base.translate)
            yield replace(base, translate=(x0 + dx, y0 + dy))
        elif job.kind == "interp":
            pos = t * len(keys)
            k, frac = int(pos), pos - int(pos)
            a, b = keys[k], keys[(k + 1) % len(keys)]
            if job.interp_space == "z":
                yield replace(base, z=slerp(a, b, frac), w=None)
            else:
                yield replace(base, w=((1 - frac) * a + frac * b).astype(np.float32), z=None)
        else:  # sweep
            strength = -float(job.strength) * math.cos(2 * math.pi * t)
            edit = Edit(
                direction=direction,
                strength=strength,
                layer_start=int(job.layer_start),
                layer_end=job.layer_end,
                name=job.direction_name or "direction",
            )
            yield replace(base, edits=[*base.edits, edit])


def resolve_direction(job: VideoJob, model) -> tuple[np.ndarray, int, int | None]:
    """(vector, layer_start, layer_end) of the sweep: job.direction as given, or the model's
    direction named job.direction_name (gan.edit.directions), scaled so that the strength is in
    the explorer's slider units, on its own layer range unless the job sets one."""
    if job.direction is not None:
        return np.asarray(job.direction, dtype=np.float32), int(job.layer_start), job.layer_end
    from gan.edit.directions import load_directions

    available = {d.name: d for d in load_directions(model)}
    d = available.get(job.direction_name)
    if d is None:
        names = ", ".join(sorted(available)) or "none (compute some with `gan directions`)"
        raise UserError(f"this model has no direction named {job.direction_name!r}; it has: {names}")
    vector = np.asarray(d.vector, dtype=np.float32) * np.float32(d.scale)
    if int(job.layer_start) == 0 and job.layer_end is None:
        return vector, int(d.layer_start), d.layer_end
    return vector, int(job.layer_start), job.layer_end


def check_job_for_model(job: VideoJob, renderer: Renderer, direction: np.ndarray | None) -> None:
    G = renderer.G
    if direction is not None and direction.shape not in ((G.w_dim,), (G.num_ws, G.w_dim)):
        raise UserError(
            f"the direction has shape {list(direction.shape)}; this model needs [{G.w_dim}] "
            f"or [{G.num_ws}, {G.w_dim}]"
        )
    end = G.num_ws if job.layer_end is None else int(job.layer_end)
    if job.kind == "sweep" and not 0 <= int(job.layer_start) < end <= G.num_ws:
        raise UserError(
            f"layer range {job.layer_start}..{end} does not fit this model's {G.num_ws} ws (0..{G.num_ws})"
        )


# --- encoder ---------------------------------------------------------------------------------


class Mp4Writer:
    """H.264 MP4 written by imageio_ffmpeg.write_frames; the target appears only when `close()`
    has checked the result.

    write_frames neither checks ffmpeg's exit status nor captures its messages (at log level
    "error" they go to the terminal), so a full disk or a crashed encoder would pass as a video.
    `close()` therefore reads the finished temporary file back (frame count and frame size) before
    renaming it over the target, and says what went wrong otherwise.

    Use as a context manager: leaving the block by an exception (or `abort()`) deletes the
    temporary file and leaves the target untouched.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        size: tuple[int, int],
        fps: float,
        crf: int = 18,
        preset: str = "medium",
    ):
        import imageio_ffmpeg

        width, height = size
        if width % 2 or height % 2:
            raise UserError(f"frame size {width}x{height} must be even for yuv420p video")
        self.path = Path(path).absolute()
        self.size = (int(width), int(height))
        self.frames = 0
        self._check_target()
        self._tmp: Path | None = self._make_temp()
        self._gen = imageio_ffmpeg.write_frames(
            str(self._tmp),
            self.size,
            fps=Fraction(fps).limit_denominator(1001),
            codec="libx264",
            quality=None,  # the crf below
            macro_block_size=1,  # sizes are even; no silent rescaling to multiples of 16
            ffmpeg_log_level="error",
            # The temporary name has no .mp4 suffix, so the container is named.
            output_params=["-crf", str(int(crf)), "-preset", preset, "-movflags", "+faststart", "-f", "mp4"],
        )
        try:
            self._gen.send(None)  # starts ffmpeg
        except OSError as exc:  # no ffmpeg binary, or it cannot be run
            self._tmp.unlink(missing_ok=True)
            raise UserError(f"cannot start the video encoder (ffmpeg): {exc.strerror or exc}") from None

    def _check_target(self) -> None:
        parent = self.path.parent
        if self.path.is_dir():
            raise UserError(f"{self.path} is a folder; give a file name like {self.path / 'video.mp4'}")
        if not parent.is_dir():
            raise UserError(f"the folder {parent} does not exist; create it or choose another output file")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise UserError(f"the folder {parent} is not writable; choose another output file")

    def _make_temp(self) -> Path:
        """An empty hidden file next to the target. Unlike mkstemp it gets the usual permissions
        (0666 minus the umask), which ffmpeg keeps when it overwrites it and the video keeps after
        the rename."""
        try:
            fd, tmp = create_temp_file(self.path)
        except OSError as exc:
            raise UserError(f"cannot write into {self.path.parent}: {exc.strerror or exc}") from None
        os.close(fd)
        return tmp

    def write(self, frame: np.ndarray) -> None:
        frame = np.ascontiguousarray(frame, dtype=np.uint8)
        if frame.shape != (self.size[1], self.size[0], 3):
            raise ValueError(f"frame shape {frame.shape} != {(self.size[1], self.size[0], 3)}")
        try:
            self._gen.send(frame)
        except OSError:  # ffmpeg has exited: write_frames reports the broken pipe as OSError
            raise UserError(self._failure(f"the video encoder stopped after {self.frames} frames")) from None
        self.frames += 1

    def close(self) -> None:
        """Finish the file, check it and move it into place; UserError (and no file) otherwise."""
        if self._tmp is None:
            return
        self._gen.close()  # waits for ffmpeg to finish
        self._check_result()
        try:
            with open(self._tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(self._tmp, self.path)
        except OSError as exc:
            raise UserError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self._tmp = None

    def _check_result(self) -> None:
        """The temporary file holds self.frames frames of self.size, or UserError."""
        import imageio_ffmpeg

        what = f"{self.frames} frames of {self.size[0]}x{self.size[1]}"
        try:
            reader = imageio_ffmpeg.read_frames(str(self._tmp))
            try:
                size = tuple(next(reader)["size"])
            finally:
                reader.close()
            frames, _ = imageio_ffmpeg.count_frames_and_secs(str(self._tmp))
        except (OSError, RuntimeError, KeyError):
            raise UserError(self._failure(f"the encoder did not write a readable video of {what}")) from None
        if (frames, size) != (self.frames, self.size):
            raise UserError(
                self._failure(f"the encoded video has {frames} frames of {size[0]}x{size[1]}, not {what}")
            )

    def _failure(self, what: str) -> str:
        """A failed encode explained: the likely cause, what to do, and that nothing was written."""
        try:
            full = shutil.disk_usage(self.path.parent).free < _FULL_DISK_BYTES
        except OSError:
            full = False
        if full:
            why = (
                f"the disk is full (no space left in {self.path.parent}); "
                "free some space or choose another folder"
            )
        else:
            why = "ffmpeg's own message, if it gave one, is on the terminal (stderr)"
        return f"{what}: {why}. {self.path.name} was not written."

    def abort(self) -> None:
        self._gen.close()
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.close()
            except BaseException:
                self.abort()
                raise
        else:
            self.abort()


_FULL_DISK_BYTES = 1 << 20  # less free space than this after a failed encode: the disk is full


# --- the job ---------------------------------------------------------------------------------


def render_video(
    job: VideoJob,
    renderer_or_model,
    out_path: str | os.PathLike,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> VideoResult:
    """Render and encode job into out_path (an .mp4). renderer_or_model: a gan.render.Renderer,
    a gan.model_io.LoadedModel or a model file path. Raises UserError for bad settings or a
    failed write, gan.errors.Cancelled when should_stop() returned True; in both cases
    out_path is left as it was."""
    job.validate()
    renderer = renderer_for(renderer_or_model)
    direction = None
    if job.kind == "sweep":
        direction, start, end = resolve_direction(job, renderer.model)
        job = replace(job, layer_start=start, layer_end=end)
    check_job_for_model(job, renderer, direction)
    total = job.num_frames
    res = int(renderer.G.img_resolution)
    upscale = int(job.upscale or 1)
    size = int(job.size) if job.size is not None else res * upscale + (res * upscale) % 2
    smooth = job.upscale_filter == "smooth"
    t0 = time.perf_counter()
    render_ms = 0.0
    with Mp4Writer(out_path, (size, size), job.fps, crf=job.crf, preset=job.preset) as writer:
        if progress is not None:
            progress(0, total)
        for i, args in enumerate(frame_args(job, renderer, direction)):
            if should_stop is not None and should_stop():
                raise Cancelled(f"video export stopped after {i} of {total} frames")
            result = renderer.render(args)
            if result.error is not None:
                raise UserError(f"frame {i + 1} of {total}: {result.error}")
            render_ms += result.timings.get("total", 0.0)
            writer.write(fit_frame(result.image, size, upscale, smooth))
            if progress is not None:
                progress(i + 1, total)
        if should_stop is not None and should_stop():
            raise Cancelled(f"video export stopped after {total} of {total} frames")
    path = Path(out_path)
    return VideoResult(
        path=str(path),
        frames=total,
        width=size,
        height=size,
        fps=float(job.fps),
        seconds=time.perf_counter() - t0,
        render_ms_per_frame=render_ms / total,
        bytes=path.stat().st_size,
        warnings=job_warnings(job, [renderer.model.arch]),
    )


def renderer_for(obj) -> Renderer:
    """A Renderer for a model file path, a LoadedModel, or the Renderer itself."""
    if isinstance(obj, Renderer):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        from gan.model_io import load_model

        obj = load_model(obj, training_nets=False)
    # Every frame differs; only sweeps reuse early stages, so a modest cache is enough.
    return Renderer(obj, activation_cache_bytes=64 * 2**20)
