"""bench.project_glasses: picks the held-out faces whose glasses the classifier sees, projects
them and counts the glasses kept (a 2-step run on a few faces, so it stays quick)."""

from __future__ import annotations

import json

from bench import project_glasses


def test_reports_glasses_kept_on_the_faces_the_classifier_sees(capsys):
    assert project_glasses.main(["--count", "20", "--preset", "fast", "--steps", "2"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["steps"] == 2 and report["preset"] == "fast" and report["w_plus"] is False
    assert 1 <= report["classifier_sees"] <= report["wear_glasses"] <= 20  # the first 20 faces: one
    assert 0 <= report["kept"] <= report["classifier_sees"]
