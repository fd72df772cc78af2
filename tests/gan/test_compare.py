"""gan.compare: recorded metrics, the side-by-side layout, `gan video --compare`, and the rotation
warning and upscaling of `gan video`."""

from __future__ import annotations

import json

import imageio_ffmpeg
import numpy as np
import pytest

from gan.cli import main as cli_main
from gan.compare import (
    BACKGROUND,
    NOT_MEASURED,
    RecordedMetrics,
    count_name,
    label_strip,
    metrics_sidecar_path,
    models_like,
    panel_layout,
    peek_model,
    read_recorded_metrics,
    render_compare_video,
    table_cells,
    write_metrics_sidecar,
)
from gan.errors import UserError
from gan.model_io import load_model, save_model
from gan.render import RenderArgs, Renderer
from gan.video import VideoJob, fit_frame, job_warnings, render_video, rotation_warning
from tests.support.tiny import make_plain_generator, make_tiny_generator


def read_mp4(path) -> tuple[list[np.ndarray], dict]:
    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    w, h = meta["size"]
    return [np.frombuffer(b, np.uint8).reshape(h, w, 3) for b in gen], meta


@pytest.fixture(scope="module")
def tiny_sg3r_model_path(tmp_path_factory) -> str:
    G = make_plain_generator("stylegan3-r")
    path = tmp_path_factory.mktemp("r") / "tiny_sg3r.safetensors"
    save_model(path, G, arch="stylegan3-r")
    return str(path)


# --- recorded metrics --------------------------------------------------------------------------


def test_count_names():
    assert count_name("eqt50k_int", 10000) == "eqt10k_int"
    assert count_name("fd_toon10k_full", 64) == "fd_toon64_full"
    assert count_name("swd", 2048) == "swd2048" and count_name("swd", 2000) == "swd2k"
    assert count_name("eqr50k", None) == "eqr50k"


def test_sidecar_round_trip_and_table(tiny_sg3t_model_path, tmp_path):
    import shutil

    model = shutil.copy(tiny_sg3t_model_path, tmp_path / "m.safetensors")
    assert read_recorded_metrics(model) == RecordedMetrics()  # nothing recorded yet
    cells = table_cells(read_recorded_metrics(model))
    assert set(cells.values()) == {NOT_MEASURED}
    path = write_metrics_sidecar(
        model, {"eqt10k_int": 31.5, "eqr10k": float("inf"), "kid_toon10k_full": 0.0123}, "abc", {"num": 10000}
    )
    assert path == metrics_sidecar_path(model) == tmp_path / "m.metrics.json"
    recorded = read_recorded_metrics(model, sha256="abc")
    assert recorded.values["eqr10k"] == float("inf") and recorded.note == ""
    cells = table_cells(recorded)
    assert cells["eqt_int"] == "31.50 (10k)" and cells["eqr"] == "∞ (10k)"
    assert cells["kid_toon"] == "12.300 (10k)"  # KID is shown x1000
    assert cells["fid"] == NOT_MEASURED and cells["swd"] == NOT_MEASURED
    assert "another version" in read_recorded_metrics(model, sha256="other").note


def test_gan_metrics_json_output_works_as_a_sidecar(tmp_path):
    model = tmp_path / "x.pkl"
    model.write_bytes(b"not read")
    out = {"model": "x.pkl", "num": 2000, "results": {"eqt50k_int": 40.0, "swd": 12.5, "eqr50k": "inf"}}
    (tmp_path / "x.metrics.json").write_text(json.dumps(out))
    recorded = read_recorded_metrics(model)
    assert recorded.values == {"eqt2k_int": 40.0, "swd2k": 12.5, "eqr2k": float("inf")}
    (tmp_path / "x.metrics.json").write_text("{broken")
    assert "unreadable" in read_recorded_metrics(model).note


def test_metrics_in_model_metadata_and_largest_count_wins(tmp_path):
    path = tmp_path / "meta.safetensors"
    metrics = {"eqt1k_int": 20.0, "eqt10k_int": 21.0, "fid50k_full": 9.5}
    save_model(path, make_tiny_generator("stylegan2"), arch="stylegan2", metadata={"metrics": metrics})
    recorded = read_recorded_metrics(path)
    assert recorded.source == "model metadata"
    cells = table_cells(recorded)
    assert cells["eqt_int"] == "21.00 (10k)" and cells["fid"] == "9.50 (50k)"


def test_peek_and_models_like(tiny_sg2_model_path, tiny_sg3t_model_path, tmp_path):
    import shutil

    assert peek_model(tiny_sg3t_model_path) == {"arch": "stylegan3-t", "resolution": 16}
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(tiny_sg2_model_path, folder / "a.safetensors")
    shutil.copy(tiny_sg3t_model_path, folder / "b.safetensors")
    (folder / "c.pkl").write_bytes(b"\x80\x04not a model")
    assert peek_model(folder / "c.pkl") is None
    assert [p.split("/")[-1] for p in models_like(folder, 16)] == ["a.safetensors", "b.safetensors"]
    assert models_like(folder, 64) == []


# --- layout and video --------------------------------------------------------------------------


def test_layout_is_even_and_labels_are_drawn():
    layout = panel_layout(3, 256)
    assert (layout.width, layout.height) == (3 * 256 + 2 * 4, 256 + layout.label_height)
    assert layout.width % 2 == 0 and layout.height % 2 == 0
    template = label_strip([["first model · StyleGAN2"], ["SG3-T"], ["a" * 200]], layout)
    for i in range(3):
        x = layout.panel_x(i)
        strip = template[: layout.label_height, x : x + layout.panel]
        assert (np.abs(strip.astype(int) - BACKGROUND).sum(-1) > 100).sum() > 20, f"no label over panel {i}"
        assert (template[layout.label_height :, x : x + layout.panel] == BACKGROUND).all()
    with pytest.raises(UserError, match="even"):
        panel_layout(2, 31)


def test_compare_video_frames_and_layout(
    tiny_sg2_model_path, tiny_sg3t_model_path, tiny_sg3r_model_path, tmp_path
):
    paths = [tiny_sg2_model_path, tiny_sg3t_model_path, tiny_sg3r_model_path]
    renderers = [Renderer(load_model(p, training_nets=False)) for p in paths]
    job = VideoJob(kind="rotate", seeds=[4], fps=5, duration=1.2, upscale=4, upscale_filter="nearest", crf=0)
    out = tmp_path / "cmp.mp4"
    seen = []
    result = render_compare_video(job, renderers, out, progress=lambda d, t, what="": seen.append((d, t)))
    frames, meta = read_mp4(out)
    assert len(frames) == result.frames == 6 == round(job.fps * job.duration) and seen[-1] == (6, 6)
    layout = panel_layout(3, 64)
    assert meta["size"] == (layout.width, layout.height) == (result.width, result.height)
    # Each panel shows its own model at the shared transform (frame 0: no rotation yet).
    for i, renderer in enumerate(renderers):
        expected = fit_frame(renderer.render(RenderArgs(seed=4)).image, 64, 4, smooth=False)
        x = layout.panel_x(i)
        got = frames[0][layout.label_height :, x : x + 64]
        assert np.abs(got.astype(int) - expected).mean() < 8, f"panel {i}"
        strip = frames[0][: layout.label_height - 2, x : x + 64].astype(int)
        assert (np.abs(strip - BACKGROUND).sum(-1) > 150).sum() > 10, f"no label over panel {i}"
    # Only SG3-R is rotation-equivariant: the note names the others.
    assert result.warnings and "StyleGAN2 and StyleGAN3-T" in result.warnings[0]


def test_compare_video_refuses_bad_requests(tiny_sg2_model_path, tmp_path):
    job = VideoJob(kind="interp", seeds=[1, 2], fps=2, duration=1)
    with pytest.raises(UserError, match="rotate or translate"):
        render_compare_video(job, [tiny_sg2_model_path] * 2, tmp_path / "x.mp4")
    with pytest.raises(UserError, match="2 to"):
        render_compare_video(VideoJob(fps=2, duration=1), [tiny_sg2_model_path], tmp_path / "x.mp4")
    with pytest.raises(UserError, match="one label per model"):
        render_compare_video(
            VideoJob(fps=2, duration=1), [tiny_sg2_model_path] * 2, tmp_path / "x.mp4", ["a"]
        )
    assert not (tmp_path / "x.mp4").exists()


def test_cli_compare(tiny_sg2_model_path, tiny_sg3t_model_path, tmp_path, capsys):
    out = tmp_path / "cmp.mp4"
    argv = [
        "video",
        "--compare",
        tiny_sg2_model_path,
        tiny_sg3t_model_path,
        "--kind",
        "translate",
        "--fps",
        "3",
        "--duration",
        "1",
        "--upscale",
        "2",
        "--labels",
        "SG2,SG3-T",
        "--out",
        str(out),
    ]
    assert cli_main(argv) == 0
    frames, meta = read_mp4(out)
    layout = panel_layout(2, 32)
    assert len(frames) == 3 and meta["size"] == (layout.width, layout.height) == (66, 50)
    captured = capsys.readouterr()
    assert "3 frames" in captured.out and "note:" not in captured.err  # translation: nothing to warn
    # Without --upscale the panels are made at least 256 px.
    argv = [
        "video",
        "--compare",
        tiny_sg2_model_path,
        tiny_sg3t_model_path,
        "--fps",
        "2",
        "--duration",
        "1",
        "--out",
        str(out),
    ]
    assert cli_main(argv) == 0
    assert read_mp4(out)[1]["size"] == (panel_layout(2, 256).width, panel_layout(2, 256).height)
    assert "note: Only StyleGAN3-R is built for rotation" in capsys.readouterr().err

    def error(extra) -> str:
        assert (
            cli_main(["video", "--fps", "2", "--duration", "1", "--out", str(tmp_path / "e.mp4"), *extra])
            == 2
        )
        return capsys.readouterr().err

    pair = ["--compare", tiny_sg2_model_path, tiny_sg3t_model_path]
    assert "--kind interp is not one" in error([*pair, "--kind", "interp", "--seeds", "1,2"])
    assert "one per model" in error([*pair, "--labels", "only-one"])
    assert "2 to 4" in error(["--compare", tiny_sg2_model_path])
    assert "--labels is for --compare" in error(["--model", tiny_sg2_model_path, "--labels", "a"])
    assert not (tmp_path / "e.mp4").exists()


# --- rotation warning and upscaling of gan video -------------------------------------------------


def test_rotation_warning_names_the_arch_and_the_way_out():
    assert rotation_warning("stylegan3-r") is None
    t = rotation_warning("stylegan3-t")
    assert "StyleGAN3-T" in t and "translation" in t and "StyleGAN3-R" in t
    assert "stick" in rotation_warning("stylegan2")
    assert job_warnings(VideoJob(kind="translate"), ["stylegan2"]) == []
    assert job_warnings(VideoJob(kind="rotate"), ["stylegan3-r", "stylegan3-r"]) == []


def test_cli_warns_before_a_melting_rotation(tiny_sg3t_model_path, tiny_sg3r_model_path, tmp_path, capsys):
    base = ["video", "--fps", "2", "--duration", "1", "--out", str(tmp_path / "v.mp4")]
    assert cli_main([*base, "--model", tiny_sg3t_model_path, "--kind", "rotate"]) == 0
    err = capsys.readouterr().err
    assert "warning: This model is StyleGAN3-T" in err and "StyleGAN3-R" in err
    assert cli_main([*base, "--model", tiny_sg3t_model_path, "--kind", "translate"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert cli_main([*base, "--model", tiny_sg3r_model_path, "--kind", "rotate"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_upscale(tiny_sg3t_model_path, tmp_path, capsys):
    renderer = Renderer(load_model(tiny_sg3t_model_path, training_nets=False))
    plain = renderer.render(RenderArgs(seed=2)).image
    hard = fit_frame(plain, 48, 3, smooth=False)
    assert hard.shape == (48, 48, 3) and (hard[::3, ::3] == plain).all() and (hard[1::3, 2::3] == plain).all()
    checker = (np.indices((16, 16)).sum(0) % 2 * 255).astype(np.uint8)[:, :, None].repeat(3, 2)
    soft = fit_frame(checker, 48, 3, smooth=True)
    assert soft.shape == (48, 48, 3) and ((soft > 10) & (soft < 245)).any()  # in-between values
    job = VideoJob(kind="translate", seeds=[2], fps=2, duration=1, upscale=3, upscale_filter="nearest", crf=0)
    result = render_video(job, renderer, tmp_path / "up.mp4")
    frames, meta = read_mp4(tmp_path / "up.mp4")
    assert meta["size"] == (48, 48) == (result.width, result.height) and len(frames) == 2
    assert np.abs(frames[0].astype(int) - hard).mean() < 8
    out = tmp_path / "cli.mp4"
    argv = [
        "video",
        "--model",
        tiny_sg3t_model_path,
        "--kind",
        "translate",
        "--fps",
        "2",
        "--duration",
        "1",
        "--upscale",
        "4",
        "--upscale-filter",
        "smooth",
        "--out",
        str(out),
    ]
    assert cli_main(argv) == 0 and read_mp4(out)[1]["size"] == (64, 64)
    with pytest.raises(UserError, match="not both"):
        VideoJob(size=64, upscale=2).validate()
    with pytest.raises(UserError, match="whole factor"):
        VideoJob(upscale=0).validate()
    with pytest.raises(UserError, match="upscale_filter"):
        VideoJob(upscale_filter="bicubic").validate()
