"""Where the files shipped with the program live (next to the packages, also in the bundle)."""

from __future__ import annotations

from pathlib import Path

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
SHIPPED_CLASSIFIER = RESOURCES / "classifier" / "toon_classifier.safetensors"
# A second classifier (other images, other seed) that directions are refined through, so the
# shipped one stays an independent judge of the refined sliders.
REFINE_CLASSIFIER = RESOURCES / "classifier" / "toon_classifier_refine.safetensors"
MODEL_SUFFIXES = (".safetensors", ".pkl")


def model_files(folder: Path) -> list[Path]:
    """The model files directly in folder, sorted by name (none if it is not a folder)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in MODEL_SUFFIXES and p.is_file())


def shipped_blend_partners(path: str | Path) -> list[str]:
    """For a model shipped in resources/models: the other models shipped there (e.g. its anime
    fine-tune), to offer for blending. Empty for any other model."""
    path = Path(path).resolve()
    folder = (RESOURCES / "models").resolve()
    if path.parent != folder:
        return []
    return [str(p) for p in model_files(folder) if p.resolve() != path]
