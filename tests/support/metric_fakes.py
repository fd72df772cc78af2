"""Tiny stand-in generators with analytic output, a stand-in detector and an image-list data set
for the metric tests."""

import math

import torch


class _Input(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("transform", torch.eye(3))


class _WaveSynthesis(torch.nn.Module):
    """Each sample is a sum of plane waves (frequencies and phases taken from w) evaluated at
    input_transform applied to the pixel centres, in units of the image size centred at 0 -
    the coordinate convention of the StyleGAN3 input layer. Deliberate bugs for the tests:
    `sign` -1 translates the wrong way, `flip_rotation` rotates the wrong way,
    `follow_transform` False ignores the transform."""

    def __init__(self, resolution, channels, sign=1.0, flip_rotation=False, follow_transform=True):
        super().__init__()
        self.input = _Input()
        self.resolution, self.channels = resolution, channels
        self.sign, self.flip_rotation, self.follow_transform = sign, flip_rotation, follow_transform

    def forward(self, ws, noise_mode="const", input_transform=None, force_fp32=False):
        n, r = ws.shape[0], self.resolution
        if input_transform is None or not self.follow_transform:
            input_transform = self.input.transform.expand(n, 3, 3)
        t = input_transform.clone()
        t[:, :2, 2] *= self.sign
        if self.flip_rotation:
            t[:, :2, :2] = t[:, :2, :2].transpose(1, 2)
        c = (torch.arange(r, dtype=torch.float32) + 0.5) / r - 0.5
        yy, xx = torch.meshgrid(c, c, indexing="ij")
        p = torch.stack([xx, yy, torch.ones_like(xx)]).reshape(3, -1)  # [3, r*r]
        q = (t @ p)[:, :2]  # [n, 2, r*r]
        w = ws[:, 0]
        # Up to 3 waves per channel, at most ~0.15 cycles per pixel so the image is band-limited.
        images = []
        for ch in range(self.channels):
            acc = 0
            for k in range(3):
                base = (ch * 3 + k) * 3
                fx, fy = torch.tanh(w[:, base : base + 2]).unbind(1)
                phase = w[:, base + 2]
                freq = 0.15 * r * torch.stack([fx, fy], 1) / math.sqrt(2)
                acc = acc + torch.cos(2 * math.pi * (freq[:, :, None] * q).sum(1) + phase[:, None])
            images.append(acc / 3)
        return torch.stack(images, 1).reshape(n, self.channels, r, r)


class FakeGenerator(torch.nn.Module):
    def __init__(self, resolution=32, channels=3, c_dim=0, **synthesis_kwargs):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = 32, c_dim, 32
        self.img_resolution, self.img_channels, self.num_ws = resolution, channels, 2
        self.scale = torch.nn.Parameter(torch.ones(1))
        self.synthesis = _WaveSynthesis(resolution, channels, **synthesis_kwargs)

    def mapping(self, z, c, truncation_psi=1, truncation_cutoff=None):
        return (z * self.scale).unsqueeze(1).repeat(1, self.num_ws, 1)


class FakeStyleGAN2(FakeGenerator):
    """Same, but without an input transform (like StyleGAN2)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        del self.synthesis.input


class FakeDetector(torch.nn.Module):
    """A fixed random conv net standing in for Inception: uint8 images -> 24-d features."""

    def __init__(self, seed=0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.weight = torch.nn.Parameter(torch.randn(24, 3, 5, 5, generator=gen) * 0.2)
        self.sha256 = f"fake-detector-{seed}"
        self.calls = 0

    def forward(self, images):
        self.calls += images.shape[0]
        x = images.float() / 127.5 - 1
        return torch.relu(torch.nn.functional.conv2d(x, self.weight, stride=2)).mean(dim=(2, 3))


class ImageListDataset:
    """The data set interface the metrics use: len(), [i] -> (uint8 CHW numpy, label), .path."""

    def __init__(self, images, path=None):
        self.images = images
        self.path = path

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i].numpy(), torch.zeros(0).numpy()
