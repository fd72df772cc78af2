"""gan.video and `gan video`: each frame source on tiny 16 px models, MP4 read back with ffmpeg."""

from __future__ import annotations

import math
import os
import shutil
import stat
import sys
from dataclasses import replace

import imageio_ffmpeg
import numpy as np
import pytest

from gan.cli import main as cli_main
from gan.errors import Cancelled, UserError
from gan.model_io import load_model
from gan.render import Edit, RenderArgs, Renderer
from gan.video import Mp4Writer, VideoJob, frame_args, render_video, resolve_direction, slerp


def read_mp4(path) -> tuple[list[np.ndarray], dict]:
    """Every frame of an MP4 (decoded by ffmpeg) and its metadata."""
    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    w, h = meta["size"]
    frames = [np.frombuffer(b, np.uint8).reshape(h, w, 3) for b in gen]
    return frames, meta


@pytest.fixture(scope="module")
def sg2(tiny_sg2_model_path):
    return Renderer(load_model(tiny_sg2_model_path, training_nets=False))


@pytest.fixture(scope="module")
def sg3(tiny_sg3t_model_path):
    return Renderer(load_model(tiny_sg3t_model_path, training_nets=False))


def leftovers(folder) -> list[str]:
    return sorted(os.listdir(folder))


@pytest.mark.parametrize(
    "arch,kind,extra",
    [
        ("sg3", "rotate", {}),
        ("sg3", "translate", {"translate_path": "circle"}),
        ("sg2", "interp", {"seeds": [1, 2, 3], "interp_space": "z"}),
        ("sg2", "interp", {"seeds": [1, 2], "interp_space": "w"}),
        ("sg2", "sweep", {"strength": 4.0, "layer_start": 1, "layer_end": 4}),
    ],
)
def test_each_kind_writes_playable_mp4(request, tmp_path, arch, kind, extra):
    renderer = request.getfixturevalue(arch)
    w_dim = renderer.G.w_dim
    job = VideoJob(kind=kind, fps=4, duration=1.0, seeds=extra.pop("seeds", [5]), **extra)
    if kind == "sweep":
        job.direction = np.random.default_rng(0).standard_normal(w_dim).astype(np.float32)
    seen = []
    out = tmp_path / f"{kind}.mp4"
    result = render_video(job, renderer, out, progress=lambda d, t, what="": seen.append((d, t)))
    frames, meta = read_mp4(out)
    assert len(frames) == result.frames == job.fps * job.duration == 4
    assert meta["size"] == (16, 16) and meta["fps"] == 4
    assert seen[0] == (0, 4) and seen[-1] == (4, 4)
    # The animation moves: not every frame is the same picture.
    assert max(np.abs(f.astype(int) - frames[0].astype(int)).max() for f in frames[1:]) > 2
    assert leftovers(tmp_path) == [out.name]
    assert stat.S_IMODE(out.stat().st_mode) & 0o044  # normal permissions, not mkstemp's 0600


def test_output_size_resized_even(sg2, tmp_path):
    out = tmp_path / "big.mp4"
    render_video(VideoJob(kind="interp", seeds=[0, 1], fps=2, duration=1, size=40), sg2, out)
    frames, meta = read_mp4(out)
    assert meta["size"] == (40, 40) and len(frames) == 2
    with pytest.raises(UserError, match="even"):
        VideoJob(size=41).validate()


def test_rotation_frames_cover_the_loop(sg3):
    args = list(frame_args(VideoJob(kind="rotate", fps=8, duration=1), sg3))
    assert [a.rotate for a in args] == pytest.approx([i * 45.0 for i in range(8)])
    args = list(frame_args(VideoJob(kind="translate", translate_path="line", fps=4, duration=1), sg3))
    assert [a.translate[0] for a in args] == pytest.approx([0.0, 0.25, 0.0, -0.25], abs=1e-9)
    assert all(a.translate[1] == 0 for a in args)


def test_interpolation_passes_through_each_seed_and_loops(sg2):
    from gan.render import seed_to_z

    job = VideoJob(kind="interp", seeds=[3, 7], fps=8, duration=1)
    args = list(frame_args(job, sg2))
    np.testing.assert_allclose(args[0].z, seed_to_z(3, 16), rtol=1e-5)
    np.testing.assert_allclose(args[4].z, seed_to_z(7, 16), rtol=1e-5)
    # Halfway back to seed 3, not a jump: the last frame is close to seed 3 again.
    assert np.linalg.norm(args[7].z - seed_to_z(3, 16)) < np.linalg.norm(args[6].z - seed_to_z(3, 16))
    a, b = seed_to_z(1, 16), seed_to_z(2, 16)
    mid = slerp(a, b, 0.5)
    assert np.linalg.norm(mid) == pytest.approx((np.linalg.norm(a) + np.linalg.norm(b)) / 2, rel=1e-4)


def test_sweep_strength_goes_minus_plus_minus(sg2):
    job = VideoJob(kind="sweep", fps=4, duration=1, strength=2.0, direction=np.ones(16, np.float32))
    strengths = [a.edits[-1].strength for a in frame_args(job, sg2, job.direction)]
    assert strengths == pytest.approx([-2.0, 0.0, 2.0, 0.0], abs=1e-9)


def test_view_is_the_base_view(sg3):
    edit = Edit(direction=np.full(16, 0.5, np.float32), strength=1.5, name="e")
    base = RenderArgs(seed=42, psi=0.7, rotate=10.0, edits=[edit])
    job = VideoJob(kind="rotate", view=base, fps=4, duration=1)
    args = list(frame_args(job, sg3))
    assert [a.seed for a in args] == [42] * 4 and args[0].psi == pytest.approx(0.7)
    assert [a.rotate for a in args] == pytest.approx([10.0, 100.0, 190.0, 280.0])
    assert args[2].edits[0].strength == 1.5


def test_cancel_leaves_no_file_and_keeps_old_target(sg2, tmp_path):
    out = tmp_path / "v.mp4"
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(Cancelled):
        render_video(VideoJob(kind="interp", seeds=[0, 1], fps=8, duration=1), sg2, out, should_stop=stop)
    assert leftovers(tmp_path) == []
    out.write_bytes(b"old video")
    calls.clear()
    with pytest.raises(Cancelled):
        render_video(VideoJob(kind="interp", seeds=[0, 1], fps=8, duration=1), sg2, out, should_stop=stop)
    assert out.read_bytes() == b"old video" and leftovers(tmp_path) == ["v.mp4"]


def test_unwritable_or_missing_folder_is_a_clear_error(sg2, tmp_path):
    job = VideoJob(kind="interp", seeds=[0, 1], fps=2, duration=1)
    with pytest.raises(UserError, match="does not exist"):
        render_video(job, sg2, tmp_path / "missing" / "v.mp4")
    with pytest.raises(UserError, match="is a folder"):
        render_video(job, sg2, tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: permissions do not stop writes")
        with pytest.raises(UserError, match="not writable"):
            render_video(job, sg2, locked / "v.mp4")
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("free_bytes,match", [(0, "disk is full"), (10**12, "on the terminal")])
def test_encoder_failure_like_a_full_disk_leaves_nothing(sg2, tmp_path, monkeypatch, free_bytes, match):
    # A stand-in encoder that reads some frames, leaves a cut-off file, complains like ffmpeg on a
    # full disk and fails; every other ffmpeg call (reading the result back) runs the real ffmpeg.
    fake = tmp_path / "fake_ffmpeg.py"
    fake.write_text(
        "import os, sys\n"
        "if sys.argv[sys.argv.index('-i') + 1] != '-':  # not the encoder (frames on stdin)\n"
        f"    os.execv({imageio_ffmpeg.get_ffmpeg_exe()!r}, ['ffmpeg', *sys.argv[1:]])\n"
        "sys.stdin.buffer.read(100)\n"
        "open(sys.argv[-1], 'wb').write(b'\\0\\0\\0\\x18ftypisom')\n"
        "sys.stderr.write('Error writing trailer: No space left on device\\n')\nsys.exit(1)\n"
    )
    script = tmp_path / "ffmpeg"
    script.write_text(f'#!/bin/sh\nexec {sys.executable} {fake} "$@"\n')
    script.chmod(0o755)
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(script))
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=free_bytes))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(UserError, match=match) as info:
        render_video(VideoJob(kind="interp", seeds=[0, 1], fps=4, duration=1), sg2, out_dir / "v.mp4")
    assert "v.mp4 was not written" in str(info.value)
    assert leftovers(out_dir) == []


def test_missing_encoder_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(tmp_path / "no-ffmpeg"))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(UserError, match="cannot start the video encoder"):
        Mp4Writer(out_dir / "x.mp4", (16, 16), fps=10)
    assert leftovers(out_dir) == []


def test_mp4_writer_rejects_odd_sizes(tmp_path):
    with pytest.raises(UserError, match="even"):
        Mp4Writer(tmp_path / "x.mp4", (15, 16), fps=10)
    assert leftovers(tmp_path) == []


def test_model_checks(sg2, tmp_path):
    rotated = tmp_path.parent / (tmp_path.name + "_rotated.mp4")
    render_video(VideoJob(kind="rotate", fps=2, duration=1), sg2, rotated)  # SG2 turns too
    assert rotated.stat().st_size > 0
    with pytest.raises(UserError, match="shape"):
        job = VideoJob(kind="sweep", fps=2, duration=1, direction=np.ones(7, np.float32))
        render_video(job, sg2, tmp_path / "s.mp4")
    with pytest.raises(UserError, match="layer range"):
        job = VideoJob(kind="sweep", fps=2, duration=1, direction=np.ones(16, np.float32), layer_start=50)
        render_video(job, sg2, tmp_path / "s.mp4")
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(fps=0), "fps"),
        (dict(fps=30, duration=0.01), "at least 2"),
        (dict(duration=-1), "positive"),
        (dict(kind="interp", seeds=[1]), "at least 2 seeds"),
        (dict(kind="sweep"), "needs a direction"),
        (dict(kind="spin"), "kind"),
        (dict(crf=60), "crf"),
        (dict(fps=math.nan), "finite"),
    ],
)
def test_job_validation(kwargs, match):
    with pytest.raises(UserError, match=match):
        VideoJob(**kwargs).validate()


def test_named_directions(tiny_sg2_model_path, tmp_path):
    import shutil

    from gan.edit.directions import Direction, save_directions

    model_path = shutil.copy(tiny_sg2_model_path, tmp_path / "m.safetensors")
    vec = np.random.default_rng(1).standard_normal(16).astype(np.float32)
    vec /= np.linalg.norm(vec)
    smile = Direction(name="smile", kind="pca", vector=vec, layer_start=1, layer_end=3, scale=2.5)
    save_directions(model_path, [smile])
    renderer = Renderer(load_model(model_path, training_nets=False))
    job = VideoJob(kind="sweep", direction_name="frown", fps=2, duration=1, strength=2.0)
    with pytest.raises(UserError, match="no direction named 'frown'.*smile"):
        render_video(job, renderer, tmp_path / "s.mp4")
    job.direction_name = "smile"
    vector, start, end = resolve_direction(job, renderer.model)
    np.testing.assert_allclose(vector, vec * 2.5, rtol=1e-6)  # strength in slider units
    assert (start, end) == (1, 3)  # the direction's own layers
    args = list(frame_args(replace(job, layer_start=start, layer_end=end), renderer, vector))
    assert (args[0].edits[0].layer_start, args[0].edits[0].layer_end) == (1, 3)
    result = render_video(job, renderer, tmp_path / "s.mp4")
    assert len(read_mp4(result.path)[0]) == 2
    out = tmp_path / "cli.mp4"
    argv = [
        "video",
        "--model",
        str(model_path),
        "--kind",
        "sweep",
        "--direction",
        "smile",
        "--fps",
        "2",
        "--duration",
        "1",
        "--out",
        str(out),
    ]
    assert cli_main(argv) == 0 and len(read_mp4(out)[0]) == 2


def test_cli_smoke(tiny_sg2_model_path, tiny_sg3t_model_path, tmp_path, capsys):
    direction = tmp_path / "d.npy"
    np.save(direction, np.ones(16, np.float32))
    out = tmp_path / "sweep.mp4"
    argv = [
        "video",
        "--model",
        tiny_sg2_model_path,
        "--kind",
        "sweep",
        "--direction-file",
        str(direction),
        "--fps",
        "3",
        "--duration",
        "1",
        "--size",
        "32",
        "--layers",
        "0:3",
        "--out",
        str(out),
    ]
    assert cli_main(argv) == 0
    frames, meta = read_mp4(out)
    assert len(frames) == 3 and meta["size"] == (32, 32)
    assert "3 frames" in capsys.readouterr().out

    def error(argv) -> str:
        assert cli_main(argv) == 2
        return capsys.readouterr().err

    base = ["video", "--fps", "2", "--duration", "1", "--out", str(tmp_path / "x.mp4")]
    assert "no such file" in error([*base, "--model", str(tmp_path / "none.safetensors")])
    assert "does not exist" in error(
        ["video", "--model", tiny_sg3t_model_path, "--fps", "2", "--out", str(tmp_path / "no" / "x.mp4")]
    )
    assert "not a numpy" in error(
        [*base, "--model", tiny_sg2_model_path, "--kind", "sweep", "--direction-file", str(out)]
    )
    assert not (tmp_path / "x.mp4").exists()
