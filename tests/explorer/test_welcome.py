"""First run: the welcome card tells what to try with this model and what this computer lacks,
each missing thing with its exact fix; it can be turned off and reopened from Help."""

from explorer.system_check import check_inception, check_ops, system_checks
from explorer.widgets.welcome_overlay import checks_html, tips_html
from tests.support.tiny import run_app


def test_ops_check_explains_a_fallback_and_accepts_fast_or_forced_kernels():
    fallback = {
        "bias_act": {"impl": "ref", "state": "unavailable", "reason": "no C++ compiler found; install g++"},
        "upfirdn2d": {"impl": "cpu", "state": "ready", "reason": ""},
    }
    check = check_ops(fallback)
    assert not check.ok and "bias_act" in check.summary and "install g++" in check.summary
    assert "upfirdn2d" not in check.summary and check.fix
    pending = {"bias_act": {"impl": "cpu", "state": "not built", "reason": "not built yet"}}
    assert check_ops(pending).ok and "first use" in check_ops(pending).summary
    assert check_ops({"fma": {"impl": "ref", "state": "ref only", "reason": "no 'cpu' implementation"}}).ok
    forced = {"bias_act": {"impl": "ref", "state": "forced", "reason": "forced with --ops"}}
    assert check_ops(forced).ok
    assert check_ops(None).ok


def test_inception_check_names_the_file_to_download_and_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("GAN_INCEPTION_WEIGHTS", raising=False)
    check = check_inception()
    assert not check.ok
    assert "pt_inception-2015-12-05" in check.fix and str(tmp_path / "cache") in check.fix
    assert "GAN_INCEPTION_WEIGHTS" in check.fix
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"stand-in")
    monkeypatch.setenv("GAN_INCEPTION_WEIGHTS", str(weights))
    assert check_inception().ok and str(weights) in check_inception().summary


def test_tips_follow_the_model_and_problems_show_their_fixes():
    assert "File ▸ Open" in tips_html(None)
    with_anime = tips_html({"directions": [{"name": "pc0"}, {"name": "anime"}]})
    assert "Anime-ify" in with_anime and "Shift-drag" in with_anime
    assert "Anime-ify" not in tips_html({"directions": [{"name": "pc0"}]})
    assert "Blend with" not in with_anime
    assert "Blend with toon-anime" in tips_html(
        {"blend_partners": [{"name": "toon-anime", "path": "/m/toon-anime.safetensors"}]}
    )
    rows = [
        {"name": "GPU", "ok": True, "summary": "none", "fix": ""},
        {"name": "FID weights", "ok": False, "summary": "missing", "fix": "put it at /x/y.pth"},
    ]
    html = checks_html(rows)
    assert "FID weights" in html and "/x/y.pth" in html.replace("\u200b", "") and "GPU" not in html
    assert checks_html(rows[:1]) == ""


def test_welcome_card_shows_turns_off_and_reopens(qtbot, make_window, explorer_models, settings):
    window = make_window(explorer_models["sg2"])
    assert window.welcome_at_start and not window.welcome.isVisible()
    window.show()
    window.show_welcome()
    card = window.welcome
    assert card.isVisible() and "Anime-ify" in card.tips.text()
    # The card sits inside the image area.
    assert card.geometry().right() <= window.image_view.width()
    assert {row["name"] for row in system_checks(window.model_info["ops"])} >= {"Custom ops", "FID weights"}
    card.show_at_start.setChecked(False)
    card.dismiss()
    assert not card.isVisible() and not window.welcome_at_start
    assert str(settings.value("show_welcome")).lower() == "false"
    help_action = next(a for a in window.menuBar().actions() if a.text() == "&Help").menu().actions()[0]
    help_action.trigger()  # Help > Welcome and system check (F1) brings it back
    assert card.isVisible() and not card.show_at_start.isChecked()


def test_app_prints_when_the_first_image_is_shown_and_screenshots_the_welcome_card(tmp_path, explorer_models):
    out = tmp_path / "welcome.png"
    r = run_app("--model", explorer_models["sg2"], "--screenshot", str(out), "--panel", "welcome")
    assert r.returncode == 0, r.stderr
    assert "first image shown" in r.stderr and out.stat().st_size > 1000


def test_long_paths_break_at_slashes_and_urls_become_links():
    from explorer.widgets.welcome_overlay import ZWSP

    url = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015.pth"
    rows = [
        {
            "name": "FID weights",
            "ok": False,
            "summary": "missing",
            "fix": f"Download {url} to /opt/x/cache/w.pth",
        }
    ]
    text = checks_html(rows)
    assert f"<a href='{url}'" in text and ">pt_inception-2015.pth</a>" in text
    assert f"/{ZWSP}opt/{ZWSP}x/{ZWSP}cache/{ZWSP}w.pth" in text  # breaks only after slashes


def test_card_waits_for_the_model_and_never_sits_on_other_text(qtbot, make_window, explorer_models):
    window = make_window(force_sync=False)
    window.show()
    # Nothing open, no load: the card replaces the "No model loaded" text instead of covering it.
    window.show_welcome_when_ready()
    assert window.welcome.isVisible() and window.image_view._message.toPlainText().strip() == ""
    assert "No model is open" in window.direction_panel.empty_label.text()
    window.welcome.dismiss()
    assert "No model loaded" in window.image_view._message.toPlainText()
    # A model on its way: "Opening …", and the card only once the model (and its tips) are there.
    with qtbot.waitSignal(window.bridge.rendered, timeout=60_000):
        window.load_model(explorer_models["sg2"])
        assert "Opening tiny_sg2.safetensors" in window.image_view._message.toPlainText()
        window.show_welcome_when_ready()
        assert not window.welcome.isVisible()
    qtbot.waitUntil(window.welcome.isVisible, timeout=10_000)
    assert "Anime-ify" in window.welcome.tips.text()
    geometry = window.welcome.geometry()
    window.show_welcome()  # the same content again: the card keeps its place and size
    assert window.welcome.geometry() == geometry
