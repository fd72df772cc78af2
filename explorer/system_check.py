"""What this installation can and cannot do, each with the exact fix (bridge module: touches gan).

The welcome overlay and Help > System check show these rows. Every check is quick (file lookups,
no compiling, no network) so it can run in the GUI thread.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Check:
    """One row of the system check.

    name: what was checked ("Custom ops", "GPU", ...).
    ok: False when something is missing or slower than it could be.
    summary: what was found, in one sentence.
    fix: what to do about it (empty when ok).
    """

    name: str
    ok: bool
    summary: str
    fix: str = ""


def check_ops(ops_caps: dict | None) -> Check:
    """Compiled C++/CUDA kernels, from the capabilities the model loader reported."""
    if not ops_caps:
        return Check("Custom ops", True, "Open a model to see which kernels it runs on.")
    # Ops that only exist in plain PyTorch ('ref only') are not something to fix.
    slow = {
        op: cap for op, cap in ops_caps.items() if cap.get("impl") == "ref" and cap.get("state") != "ref only"
    }
    if not slow:
        impls = sorted({str(cap.get("impl")) for cap in ops_caps.values()})
        pending = [op for op, cap in ops_caps.items() if cap.get("state") == "not built"]
        note = " (compiled on first use, 20-60 s once)" if pending else ""
        return Check("Custom ops", True, f"Fast kernels: {', '.join(impls)}{note}.")
    reasons = sorted({str(cap.get("reason") or "") for cap in slow.values()} - {""})
    forced = all(cap.get("state") == "forced" for cap in slow.values())
    if forced:
        return Check("Custom ops", True, "Reference kernels, as asked with --ops ref.")
    return Check(
        "Custom ops",
        False,
        f"{', '.join(sorted(slow))} run on the plain-PyTorch reference (several times slower): "
        + "; ".join(reasons),
        "Do what the message above says, then restart the app; until then everything works, only slower.",
    )


def check_inception() -> Check:
    """Inception weights for FID / KID (never downloads here)."""
    from gan.errors import UserError
    from gan.metrics.inception import ENV_VAR, OFFICIAL_URL, WeightsSource, cache_dir, resolve_weights

    try:
        path = resolve_weights(source=WeightsSource(allow_download=False))
    except UserError:
        target = cache_dir() / WeightsSource().filename
        return Check(
            "FID weights",
            False,
            "The Inception weights for FID / KID are not on this computer; training skips those "
            "metrics (EQ-T, EQ-R and SWD still run).",
            f"Download {OFFICIAL_URL} and save it as {target}, or set {ENV_VAR} to its path. "
            "With internet access the first FID run downloads it by itself.",
        )
    return Check("FID weights", True, f"Inception weights found: {path}.")


def check_gpu() -> Check:
    from gan.capabilities import cuda_name

    name = cuda_name()
    if name is not None:
        return Check("GPU", True, f"CUDA: {name}.")
    return Check(
        "GPU",
        True,
        "No CUDA GPU: rendering and training run on the CPU (fine for the small default model).",
    )


def check_video() -> Check:
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:  # missing package or binary: MP4 export is the only casualty
        return Check(
            "MP4 export",
            False,
            f"ffmpeg is not available ({exc}).",
            "Install it with `pip install imageio-ffmpeg` (it carries its own ffmpeg).",
        )
    return Check("MP4 export", True, f"ffmpeg: {exe}.")


def system_checks(ops_caps: dict | None) -> list[dict]:
    """All checks as plain dicts (name, ok, summary, fix) for the widgets."""
    return [asdict(c) for c in (check_ops(ops_caps), check_gpu(), check_inception(), check_video())]
