"""Latent editing: PCA and attribute directions, network blending, interpolation, the toon classifier."""
