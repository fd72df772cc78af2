"""The StyleGAN2 / StyleGAN3 training loss (as described in the StyleGAN2, ADA and StyleGAN3 papers).

- Non-saturating logistic loss: G minimises softplus(-D(G(z))), D minimises
  softplus(D(G(z))) + softplus(-D(x)).
- Lazy R1 on reals: every `r1_interval` D steps, gamma/2 * |grad_x D(x)|^2, scaled by the interval.
- Path length regularisation (StyleGAN2): every `g_reg_interval` G steps,
  (|J_w^T y| - a)^2 with y ~ N(0, I)/sqrt(H*W) and a a running mean (decay pl_decay).
- Style mixing: with probability p the ws after a random cutoff come from a second z.
- StyleGAN3 D blur: images shown to D are blurred with a Gaussian whose sigma fades linearly
  from blur_init_sigma to 0 over blur_fade_kimg.
- The images D sees (real and fake) pass the AugmentPipe when augmentation is on; the signs of
  the real logits feed the ADA controller.
- Optional class balance (ours, gan.train.balance): a classifier term in the G loss that moves
  the class shares of G's images towards the data set's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gan.train.augment import AdaController, AugmentPipe
from gan.train.balance import ClassBalance
from gan.train.stats import StatsCollector
from ops_cuda.upfirdn2d import filter2d


@dataclass
class LossSettings:
    r1_gamma: float
    pl_weight: float = 0.0
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    style_mixing: float = 0.0
    blur_init_sigma: float = 0.0
    blur_fade_kimg: float = 0.0


def blur_sigma(settings: LossSettings, cur_nimg: int) -> float:
    """The D input blur sigma after cur_nimg images."""
    if settings.blur_fade_kimg <= 0 or settings.blur_init_sigma <= 0:
        return 0.0
    return max(1 - cur_nimg / (settings.blur_fade_kimg * 1e3), 0.0) * settings.blur_init_sigma


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with a kernel of radius floor(3 sigma) (none below 1/3)."""
    radius = int(math.floor(sigma * 3))
    if radius <= 0:
        return images
    taps = torch.arange(-radius, radius + 1, device=images.device, dtype=torch.float32).div(sigma).square()
    f = taps.neg().exp2()  # the official kernel shape: 2^(-(x/sigma)^2)
    return filter2d(images, f / f.sum())


class StyleGANLoss:
    """Accumulates the gradients of one training phase; the caller zeroes and steps optimizers."""

    def __init__(
        self,
        G: torch.nn.Module,
        D: torch.nn.Module,
        settings: LossSettings,
        stats: StatsCollector,
        augment_pipe: AugmentPipe | None = None,
        ada: AdaController | None = None,
        balance: ClassBalance | None = None,
    ):
        self.G, self.D = G, D
        self.s = settings
        self.stats = stats
        self.augment_pipe = augment_pipe
        self.ada = ada
        self.balance = balance
        device = next(G.parameters()).device
        self.pl_mean = torch.zeros([], device=device)  # running mean path length

    # --- network passes -----------------------------------------------------------------

    def run_G(self, z: torch.Tensor, c: torch.Tensor, update_emas: bool = False):
        ws = self.G.mapping(z, c, update_emas=update_emas)
        if self.s.style_mixing > 0:
            ws = self._mix_styles(ws, z, c)
        return self.G.synthesis(ws, update_emas=update_emas), ws

    def _mix_styles(self, ws: torch.Tensor, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        num_ws = ws.shape[1]
        cutoff = int(torch.randint(1, num_ws, []))
        if float(torch.rand([])) >= self.s.style_mixing:
            return ws
        ws2 = self.G.mapping(torch.randn_like(z), c, update_emas=False)
        return torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)

    def run_D(self, img: torch.Tensor, c: torch.Tensor, sigma: float, update_emas: bool = False):
        img = gaussian_blur(img, sigma)
        if self.augment_pipe is not None:
            img = self.augment_pipe(img)
        return self.D(img, c, update_emas=update_emas)

    # --- phases -------------------------------------------------------------------------

    def g_main(self, gen_z, gen_c, gain: float, cur_nimg: int) -> torch.Tensor:
        img, _ws = self.run_G(gen_z, gen_c)
        logits = self.run_D(img, gen_c, blur_sigma(self.s, cur_nimg))
        self.stats.report("Loss/scores/fake", logits)
        self.stats.report("Loss/signs/fake", logits.sign())
        loss = F.softplus(-logits).mean()
        self.stats.report("Loss/G/loss", loss)
        if self.balance is not None:
            balance_loss, shares = self.balance.loss(img)
            for head in self.balance.heads:
                for name, value in zip(head.classes, shares[head.name]):
                    self.stats.report(f"Balance/share/{head.name}={name}", value)
            self.stats.report("Loss/G/balance", balance_loss)
            loss = loss + balance_loss
        loss.mul(gain).backward()
        return loss.detach()

    def g_reg(self, gen_z, gen_c, gain: float) -> torch.Tensor:
        n = max(gen_z.shape[0] // self.s.pl_batch_shrink, 1)
        img, ws = self.run_G(gen_z[:n], gen_c[:n])
        noise = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
        (grads,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
        lengths = grads.square().sum(2).mean(1).sqrt()
        pl_mean = self.pl_mean.lerp(lengths.mean().detach(), self.s.pl_decay)
        self.pl_mean.copy_(pl_mean)
        penalty = (lengths - pl_mean).square()
        self.stats.report("Loss/pl_penalty", penalty)
        loss = (penalty * self.s.pl_weight).mean()
        self.stats.report("Loss/G/reg", loss)
        loss.mul(gain).backward()
        return loss.detach()

    def d_main(self, real_img, real_c, gen_z, gen_c, gain: float, cur_nimg: int) -> torch.Tensor:
        sigma = blur_sigma(self.s, cur_nimg)
        with torch.no_grad():
            fake, _ws = self.run_G(gen_z, gen_c, update_emas=True)
        fake_logits = self.run_D(fake, gen_c, sigma, update_emas=True)
        loss_fake = F.softplus(fake_logits).mean()
        loss_fake.mul(gain).backward()

        real_logits = self.run_D(real_img.detach(), real_c, sigma)
        loss_real = F.softplus(-real_logits).mean()
        loss_real.mul(gain).backward()
        self.stats.report("Loss/scores/real", real_logits)
        self.stats.report("Loss/signs/real", real_logits.sign())
        if self.ada is not None:
            self.ada.observe(real_logits)
        loss = loss_fake.detach() + loss_real.detach()
        self.stats.report("Loss/D/loss", loss)
        return loss

    def d_reg(self, real_img, real_c, gain: float, cur_nimg: int) -> torch.Tensor:
        real = real_img.detach().requires_grad_(True)
        logits = self.run_D(real, real_c, blur_sigma(self.s, cur_nimg))
        (grads,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
        penalty = grads.square().sum([1, 2, 3])
        self.stats.report("Loss/r1_penalty", penalty)
        loss = (penalty * (self.s.r1_gamma / 2)).mean()
        self.stats.report("Loss/D/reg", loss)
        loss.mul(gain).backward()
        return loss.detach()
