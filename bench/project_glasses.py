"""Do more projection steps keep glasses? (the glasses criterion of the photo issue)

Takes the held-out photo-style faces of bench.project_quality (same seed, same count) that wear
glasses and that the shipped classifier sees wearing them (a projection cannot be asked to show
what the classifier cannot see on the input itself), projects them at a preset and step count in
one batch, and says on how many of them the classifier still sees glasses:

    python -m bench.project_glasses --preset best --steps 600
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from bench.project_quality import DEFAULT_MODEL, HELD_OUT_SEED, held_out, render_all


def main(argv: list[str] | None = None) -> int:
    from gan.edit.classifier import load_classifier
    from gan.model_io import load_model
    from gan.photo.pipeline import discriminator_for
    from gan.photo.project import PRESETS, ProjectConfig, project
    from gan.resources import SHIPPED_CLASSIFIER

    p = argparse.ArgumentParser(prog="python -m bench.project_glasses", description=__doc__.splitlines()[0])
    p.add_argument("--preset", choices=list(PRESETS), default="best")
    p.add_argument("--steps", type=int, default=None, help="steps (default: the preset's)")
    p.add_argument("--count", type=int, default=100, help="held-out faces to choose from")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    model = load_model(DEFAULT_MODEL, training_nets=True)
    D, _ = discriminator_for(model)
    clf = load_classifier(SHIPPED_CLASSIFIER)
    targets, attrs = held_out(args.count, int(model.G.img_resolution), HELD_OUT_SEED)
    glasses = np.array([a["glasses"] for a in attrs])
    seen = np.where((glasses == 1) & (clf.predict(targets)["glasses"] == 1))[0]
    overrides = {} if args.steps is None else {"steps": args.steps}
    config = ProjectConfig.preset(args.preset, **overrides)
    t0 = time.process_time()
    kept = np.zeros(0)
    if len(seen):
        results = project(model.G, targets[seen], config, D=D)
        kept = clf.predict(render_all(model, np.stack([r.ws for r in results])))["glasses"]
    cpu = time.process_time() - t0
    report = {
        "wear_glasses": int(glasses.sum()),
        "classifier_sees": len(seen),
        "preset": args.preset,
        "steps": config.steps,
        "w_plus": config.w_plus,
        "kept": int(kept.sum()),
        "cpu_s_per_image": round(cpu / max(len(seen), 1), 1),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
