"""Models side by side: their recorded metrics, and one video with a labelled panel per model
(the StyleGAN3 paper's supplementary-video style).

    result = render_compare_video(VideoJob(kind="rotate"), ["sg2.pkl", "sg3t.pkl", "sg3r.pkl"], "cmp.mp4")

Recorded metrics come from a sidecar `<model name>.metrics.json` next to the model file (written by
`python -m bench.compare_archs --sidecar`, or the output of `gan metrics --json`), else from
`metrics` in the metadata of one of our `.safetensors` files. Nothing is measured here: a model
without recorded numbers is "not measured".
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from gan.errors import Cancelled, UserError
from gan.progress import Progress
from gan.video import (
    ARCH_LABELS,
    Mp4Writer,
    VideoJob,
    VideoResult,
    fit_frame,
    frame_args,
    job_warnings,
    renderer_for,
)

METRICS_SUFFIX = ".metrics.json"
METRICS_FORMAT = "stylegan-explorer-metrics"
COMPARE_KINDS = ("rotate", "translate")
MAX_MODELS = 4
MIN_PANEL = 256  # a comparison video's panels are at least this big unless size / upscale say otherwise
BACKGROUND = (18, 20, 24)
LABEL_COLOUR = (228, 232, 238)

# Columns of a comparison table: (key, header, pattern of the metric names, format).
COLUMNS = (
    ("eqt_int", "EQ-T (dB)", r"eqt\d+k?_int", "{:.2f}"),
    ("eqt_frac", "EQ-T frac (dB)", r"eqt\d+k?_frac", "{:.2f}"),
    ("eqr", "EQ-R (dB)", r"eqr\d+k?", "{:.2f}"),
    ("swd", "SWD ×1e3", r"swd(\d+k?)?", "{:.2f}"),
    ("fd_toon", "FD toon (not FID)", r"fd_toon\d+k?(_full)?", "{:.3f}"),
    ("kid_toon", "KID toon ×1e3", r"kid_toon\d+k?(_full)?", "{:.3f}"),
    ("fid", "FID", r"fid\d+k?(_full)?", "{:.2f}"),
    ("kid", "KID ×1e3", r"kid\d+k?(_full)?", "{:.3f}"),
)
_SCALED = {"kid_toon", "kid"}  # shown x1000 like the papers' tables
NOT_MEASURED = "not measured"


# --- recorded metrics --------------------------------------------------------------------------


def count_name(name: str, num: int | None) -> str:
    """A registry metric name with its real sample count: ('eqt50k_int', 10000) -> 'eqt10k_int'."""
    if num is None:
        return name
    count = f"{num // 1000}k" if num >= 1000 and num % 1000 == 0 else str(num)
    if re.search(r"\d+k", name):
        return re.sub(r"\d+k", count, name, count=1)
    return f"{name}{count}" if name == "swd" else name


def metrics_sidecar_path(model_path: str | os.PathLike) -> Path:
    """`model.safetensors` / `model.pkl` -> `model.metrics.json` in the same folder."""
    p = Path(model_path)
    return p.with_name(p.stem + METRICS_SUFFIX)


@dataclass
class RecordedMetrics:
    values: dict[str, float] = field(default_factory=dict)  # metric name (with its count) -> value
    source: str = ""  # the sidecar file, "model metadata", or "" when nothing was recorded
    note: str = ""  # e.g. that the numbers belong to another version of the file


def _numbers(raw: dict, num: int | None) -> dict[str, float]:
    out = {}
    for name, value in raw.items():
        if isinstance(value, str) and value in ("inf", "-inf", "nan"):
            value = float(value)  # gan metrics --json writes a perfect score as "inf"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[count_name(str(name), num)] = float(value)
    return out


def read_recorded_metrics(model_path: str | os.PathLike, sha256: str | None = None) -> RecordedMetrics:
    """The metrics recorded for a model file (see the module docstring); never raises for a
    missing or unreadable record, it says so in `note` instead."""
    sidecar = metrics_sidecar_path(model_path)
    if sidecar.is_file():
        try:
            data = json.loads(sidecar.read_text(encoding="utf-8"))
            raw = data.get("results", data.get("metrics"))
            if not isinstance(raw, dict):
                raise ValueError("no 'results' object")
        except (OSError, ValueError, AttributeError) as exc:
            return RecordedMetrics(source=str(sidecar), note=f"{sidecar.name} is unreadable ({exc})")
        num = data.get("num") if isinstance(data.get("num"), int) else None
        recorded = RecordedMetrics(_numbers(raw, num), str(sidecar))
        stored_sha = data.get("model_sha256")
        if sha256 and stored_sha and stored_sha != sha256:
            recorded.note = f"measured on another version of this file ({sidecar.name})"
        return recorded
    metadata = _safetensors_metadata(model_path)
    raw = metadata.get("metrics") if isinstance(metadata, dict) else None
    if isinstance(raw, dict):
        return RecordedMetrics(_numbers(raw, None), "model metadata")
    return RecordedMetrics()


def write_metrics_sidecar(
    model_path: str | os.PathLike, values: dict[str, float], sha256: str, settings: dict
) -> Path:
    """Record values (names with their sample counts) next to the model, for the comparison view."""
    from gan.io.files import atomic_write_bytes

    path = metrics_sidecar_path(model_path)
    data = {
        "format": METRICS_FORMAT,
        "model": os.path.basename(os.fspath(model_path)),
        "model_sha256": sha256,
        "results": {k: (v if math.isfinite(v) else str(v)) for k, v in values.items()},
        "settings": settings,
    }
    atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())
    return path


def table_cells(recorded: RecordedMetrics) -> dict[str, str]:
    """{column key: text} of one model's row; NOT_MEASURED where nothing was recorded."""
    cells = {}
    for key, _, pattern, fmt in COLUMNS:
        names = sorted((n for n in recorded.values if re.fullmatch(pattern, n)), key=_count_of, reverse=True)
        if not names:
            cells[key] = NOT_MEASURED
            continue
        value = recorded.values[names[0]]  # the largest sample count recorded
        shown = value * 1000 if key in _SCALED else value
        text = "∞" if math.isinf(shown) else fmt.format(shown)
        cells[key] = f"{text} ({_count_label(names[0])})" if _count_label(names[0]) else text
    return cells


def _count_of(name: str) -> int:
    m = re.search(r"(\d+)(k?)", name)
    return 0 if m is None else int(m.group(1)) * (1000 if m.group(2) else 1)


def _count_label(name: str) -> str:
    m = re.search(r"\d+k?", name)
    return "" if m is None else m.group(0)


# --- model files -------------------------------------------------------------------------------


def _safetensors_header(path: str | os.PathLike) -> dict:
    """The string metadata of a safetensors file ({} for other files); reads the header only."""
    try:
        import safetensors

        with safetensors.safe_open(os.fspath(path), framework="pt", device="cpu") as f:
            return dict(f.metadata() or {})
    except Exception:  # not a safetensors file, damaged: no header to read
        return {}


def _safetensors_metadata(path: str | os.PathLike) -> dict:
    try:
        return json.loads(_safetensors_header(path).get("metadata", "{}"))
    except ValueError:
        return {}


def peek_model(path: str | os.PathLike) -> dict | None:
    """{'arch', 'resolution'} of one of our model files from its header (no weights loaded);
    None for official pickles and unreadable files."""
    try:
        config = json.loads(_safetensors_header(path).get("config", "null"))
        kwargs = config["networks"]["G_ema"]["kwargs"]
        return {"arch": str(config["arch"]), "resolution": int(kwargs["img_resolution"])}
    except (TypeError, KeyError, ValueError):
        return None


def models_like(folder: str | os.PathLike, resolution: int) -> list[str]:
    """The model files directly in folder (e.g. resources/models) of the given resolution."""
    from gan.resources import model_files

    out = []
    for p in model_files(Path(folder)):
        info = peek_model(p)
        if info is not None and info["resolution"] == resolution:
            out.append(str(p))
    return out


def model_label(path: str | os.PathLike, arch: str) -> str:
    return f"{Path(path).stem} · {ARCH_LABELS.get(arch, arch)}"


# --- the video ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PanelLayout:
    """count square panels of `panel` px in a row, `gap` px apart, under a label strip."""

    count: int
    panel: int
    label_height: int
    gap: int

    @property
    def width(self) -> int:
        return self.count * self.panel + (self.count - 1) * self.gap

    @property
    def height(self) -> int:
        return self.label_height + self.panel

    def panel_x(self, index: int) -> int:
        return index * (self.panel + self.gap)


def panel_layout(count: int, panel: int) -> PanelLayout:
    """Even sizes throughout (yuv420p video needs an even width and height)."""
    if panel % 2:
        raise UserError(f"the panel size must be even, not {panel}")
    label = max(18, round(panel * 0.09))
    return PanelLayout(count, panel, label + label % 2, 4 if panel >= 64 else 2)


def label_strip(labels: Sequence[Sequence[str]], layout: PanelLayout) -> np.ndarray:
    """The frame without pictures: background and each panel's label centred above it. Each
    label is a list of candidates, longest first; the first that fits is drawn."""
    frame = Image.new("RGB", (layout.width, layout.height), BACKGROUND)
    draw = ImageDraw.Draw(frame)
    font = ImageFont.load_default(size=max(9, round(layout.label_height * 0.62)))
    for i, candidates in enumerate(labels):
        text = _fitting(draw, font, list(candidates), layout.panel - 4)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        x = layout.panel_x(i) + (layout.panel - (right - left)) / 2 - left
        y = (layout.label_height - (bottom - top)) / 2 - top
        draw.text((x, y), text, fill=LABEL_COLOUR, font=font)
    return np.asarray(frame).copy()


def _fitting(draw, font, candidates: list[str], width: int) -> str:
    for text in candidates:
        if draw.textlength(text, font=font) <= width:
            return text
    text = candidates[-1]
    while len(text) > 1 and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def compose_frame(template: np.ndarray, images: Sequence[np.ndarray], layout: PanelLayout) -> np.ndarray:
    """One video frame: the label strip template with each panel's picture pasted below its label."""
    frame = template.copy()
    for i, image in enumerate(images):
        if image.shape != (layout.panel, layout.panel, 3):
            raise ValueError(f"panel {i} is {image.shape}, expected {(layout.panel, layout.panel, 3)}")
        x = layout.panel_x(i)
        frame[layout.label_height :, x : x + layout.panel] = image
    return frame


def render_compare_video(
    job: VideoJob,
    models: Sequence,
    out_path: str | os.PathLike,
    labels: Sequence[str] | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> VideoResult:
    """One MP4 with the models side by side, each labelled with its name and architecture; every
    panel gets the same seed (or recipe view) and the same input transform per frame.

    models: Renderers, LoadedModels or model file paths (2 .. MAX_MODELS). job.kind: rotate or
    translate. job.size is the panel size; job.upscale scales the largest resolution (default:
    the smallest factor giving panels of at least MIN_PANEL px). labels: one per model
    (default: file name and architecture)."""
    job.validate()
    if job.kind not in COMPARE_KINDS:
        raise UserError(f"a comparison video is a {' or '.join(COMPARE_KINDS)} loop, not {job.kind!r}")
    if not 2 <= len(models) <= MAX_MODELS:
        raise UserError(f"compare 2 to {MAX_MODELS} models, not {len(models)}")
    if labels is not None and len(labels) != len(models):
        raise UserError(f"{len(labels)} label(s) for {len(models)} models: give one label per model")
    renderers = [renderer_for(m) for m in models]
    archs = [r.model.arch for r in renderers]
    candidates = []
    for i, (r, arch) in enumerate(zip(renderers, archs)):
        if labels is not None:
            candidates.append([labels[i]])
        else:
            short = ARCH_LABELS.get(arch, arch)
            candidates.append([model_label(r.model.source, arch), short, short.replace("StyleGAN", "SG")])
    resolutions = [int(r.G.img_resolution) for r in renderers]
    if job.size is not None:
        panel = int(job.size)
    else:
        biggest = max(resolutions)
        factor = int(job.upscale) if job.upscale is not None else max(1, math.ceil(MIN_PANEL / biggest))
        panel = biggest * factor + (biggest * factor) % 2
    layout = panel_layout(len(renderers), panel)
    template = label_strip(candidates, layout)
    smooth = job.upscale_filter == "smooth"
    factors = [panel // res if panel % res == 0 else 1 for res in resolutions]

    total = job.num_frames
    t0 = time.perf_counter()
    render_ms = 0.0
    sources = [frame_args(replace(job), r) for r in renderers]
    with Mp4Writer(
        out_path, (layout.width, layout.height), job.fps, crf=job.crf, preset=job.preset
    ) as writer:
        if progress is not None:
            progress(0, total)
        for i in range(total):
            if should_stop is not None and should_stop():
                raise Cancelled(f"video export stopped after {i} of {total} frames")
            images = []
            for renderer, source, factor, arch in zip(renderers, sources, factors, archs):
                result = renderer.render(next(source))
                if result.error is not None:
                    name = Path(str(renderer.model.source)).name
                    raise UserError(f"frame {i + 1} of {total}, {name} ({arch}): {result.error}")
                render_ms += result.timings.get("total", 0.0)
                images.append(fit_frame(result.image, panel, factor, smooth))
            writer.write(compose_frame(template, images, layout))
            if progress is not None:
                progress(i + 1, total)
        if should_stop is not None and should_stop():
            raise Cancelled(f"video export stopped after {total} of {total} frames")
    path = Path(out_path)
    return VideoResult(
        path=str(path),
        frames=total,
        width=layout.width,
        height=layout.height,
        fps=float(job.fps),
        seconds=time.perf_counter() - t0,
        render_ms_per_frame=render_ms / total,
        bytes=path.stat().st_size,
        warnings=job_warnings(job, archs),
    )
