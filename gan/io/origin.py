"""Where a model read from one of NVIDIA's pickles came from, as text for `gan info` and the
explorer's model info (no torch import: `gan --help` stays fast)."""

from __future__ import annotations


def origin_lines(metadata: dict) -> list[str]:
    """Where a model from an official pickle came from (era, family, module, augment p), as lines
    of text; [] for other models."""
    if metadata.get("source_format") != "official-pickle":
        return []
    nets = metadata.get("official_networks") or {}
    if metadata.get("era") == "tensorflow":
        lines = ["NVIDIA network pickle, TensorFlow era (StyleGAN2 / StyleGAN2-ADA), read without TensorFlow"]
        lines += [
            f"{key}: dnnlib.tflib Network '{net.get('name')}' ({net.get('build_func_name')})"
            for key, net in nets.items()
        ]
    else:
        lines = ["NVIDIA network pickle, PyTorch era"]
        for key, net in nets.items():
            lines.append(f"{key}: {net['class_name']} of {net['module']} ({net['repository']})")
    augment = metadata.get("augment_pipe")
    if augment:
        p = "unknown" if augment["p"] is None else f"{augment['p']:.4g}"
        lines.append(f"augment_pipe: {augment['class_name']} of {augment.get('module')}, p = {p}")
    return lines
