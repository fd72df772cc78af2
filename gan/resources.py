"""Where the files shipped with the program live (next to the packages, also in the bundle)."""

from pathlib import Path

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
SHIPPED_CLASSIFIER = RESOURCES / "classifier" / "toon_classifier.safetensors"
