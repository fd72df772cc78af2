"""Model file I/O: our safetensors format and a safe importer for NVIDIA's official pickles.

The public API lives in `gan.model_io`; the modules here are its parts.
"""
