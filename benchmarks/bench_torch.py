"""PyTorch eager training and inference steps doing the same work as colorjax's jitted steps.

Used only by ``bench_models.py`` (torch is an optional extra, never needed to train or colorize).
Each step starts from the same uint8 RGB batch as the JAX step and does the same work:

- ECCV16 classification: sRGB -> Lab, Zhang's non-gray mask, ab subsampled with stride 4, soft
  encoding (k nearest of the 313 centres, Gaussian sigma 5), rebalancing weight at the nearest bin,
  soft cross-entropy over 313 bins, backward, Adam with L2 weight decay.
- pix2pix: sRGB -> Lab, the U-Net generator once, the PatchGAN discriminator updated on
  (real, detached fake) with BCE (halved), then the generator through the updated discriminator
  with BCE + 100 * L1 on ab / 110.
- Inference: ECCV16 in evaluation mode to annealed-mean ab (T = 0.38) at 1/4 resolution; pix2pix
  generator in evaluation mode to ab.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tests.fixtures.torch_reference import ECCV16Torch, Pix2PixGeneratorTorch, scaled

# The same constants colorjax uses (colorjax.color, colorjax.bins, colorjax.training.config),
# imported rather than retyped so the two sides cannot drift apart.
from colorjax.bins import GRAY_THRESHOLD
from colorjax.color import AB_SCALE, D65_WHITE, XYZ_FROM_RGB


def rgb_uint8_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """uint8 [B, H, W, 3] -> Lab float32 [B, 3, H, W] (scikit-image's formulas, as colorjax.color)."""
    x = rgb.permute(0, 3, 1, 2).float() / 255.0
    linear = torch.where(x > 0.04045, ((x.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4, x / 12.92)
    matrix = (torch.tensor(XYZ_FROM_RGB, dtype=torch.float32, device=rgb.device)
              / torch.tensor(D65_WHITE, dtype=torch.float32, device=rgb.device)[:, None])
    xyz = torch.einsum("ij,bjhw->bihw", matrix, linear)
    f = torch.where(xyz > 0.008856, torch.pow(xyz.clamp(min=0.008856), 1 / 3), 7.787 * xyz + 16 / 116)
    fx, fy, fz = f[:, 0], f[:, 1], f[:, 2]
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=1)


def soft_encode(ab: torch.Tensor, centres: torch.Tensor, k: int, sigma: float):
    """ab [B, 2, h, w] -> (soft targets [B, Q, h, w], nearest bin [B, h, w])."""
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    d2 = (flat[:, None, :] - centres).square().sum(dim=-1)  # exact, as colorjax (cdist uses a matmul)
    neg, index = torch.topk(-d2, k, dim=-1)
    weights = torch.softmax(neg / (2 * sigma**2), dim=-1)
    target = torch.zeros_like(d2).scatter_(1, index, weights)
    b, _, h, w = ab.shape
    return target.reshape(b, h, w, -1).permute(0, 3, 1, 2), index[:, 0].reshape(b, h, w)


class PatchDiscriminatorTorch(nn.Module):
    """pix2pix's 70 x 70 PatchGAN on concat(L / 50 - 1, ab / 110)."""

    def __init__(self, n_layers: int = 3, width: float = 1.0):
        super().__init__()
        layers, channels = [], 3
        for i in range(n_layers + 1):
            out = scaled(64 * min(2**i, 8), width)
            layers.append(nn.Conv2d(channels, out, 4, stride=2 if i < n_layers else 1, padding=1, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.LeakyReLU(0.2, True))
            channels = out
        layers.append(nn.Conv2d(channels, 1, 4, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, L, ab):
        return self.model(torch.cat([L / 50.0 - 1.0, ab / AB_SCALE], dim=1))


def _colourful(ab: torch.Tensor) -> torch.Tensor:
    return (ab.abs().amax(dim=1) > GRAY_THRESHOLD).flatten(1).any(dim=1).float()


def _masked_mean(pixel_map: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask[:, None, None].expand_as(pixel_map)
    return (pixel_map * weights).sum() / weights.sum().clamp(min=1.0)


class ECCV16Classification:
    """ECCV16 with the Q-bin head: ``train_step(rgb)`` and ``infer(L)``."""

    def __init__(self, centres, class_weights, *, width=1.0, k=5, sigma=5.0, temperature=0.38, lr=3e-5, device="cpu"):
        self.net = ECCV16Torch(width, num_bins=len(centres)).to(device)
        self.centres = torch.as_tensor(centres, dtype=torch.float32, device=device)
        self.class_weights = torch.as_tensor(class_weights, dtype=torch.float32, device=device)
        self.k, self.sigma, self.temperature = k, sigma, temperature
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=1e-3)
        self.loss = self._loss

    def compile(self, **options) -> None:
        """Run the forward pass and loss (and through AOTAutograd their backward) under
        ``torch.compile(**options)``; Adam's update stays eager (its fused CUDA kernels)."""
        self.loss = torch.compile(self._loss, **options)

    def _logits(self, L):
        x = (L - 50.0) / 100.0
        net = self.net
        for block in (net.model1, net.model2, net.model3, net.model4, net.model5, net.model6, net.model7):
            x = block(x)
        return net.model8(x)

    def _loss(self, rgb: torch.Tensor) -> torch.Tensor:
        lab = rgb_uint8_to_lab(rgb)
        L, ab = lab[:, :1], lab[:, 1:]
        colourful = _colourful(ab)
        target, nearest = soft_encode(ab[:, :, ::4, ::4], self.centres, self.k, self.sigma)
        logits = self._logits(L).float()
        per_pixel = -(target * F.log_softmax(logits, dim=1)).sum(dim=1) * self.class_weights[nearest]
        return _masked_mean(per_pixel, colourful)

    def train_step(self, rgb: torch.Tensor) -> float:
        self.net.train()
        loss = self.loss(rgb)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss

    @torch.inference_mode()
    def infer(self, L: torch.Tensor) -> torch.Tensor:
        self.net.eval()
        probs = torch.softmax(self._logits(L) / self.temperature, dim=1)
        return torch.einsum("bqhw,qc->bchw", probs, self.centres)


class Pix2Pix:
    """pix2pix generator + PatchGAN: ``train_step(rgb)`` and ``infer(L)``."""

    def __init__(self, num_downs: int, *, width=1.0, lambda_l1=100.0, lr=2e-4):
        self.g = Pix2PixGeneratorTorch(num_downs, width)
        self.d = PatchDiscriminatorTorch(width=width)
        self.lambda_l1 = lambda_l1
        self.g_opt = torch.optim.Adam(self.g.parameters(), lr=lr, betas=(0.5, 0.999))
        self.d_opt = torch.optim.Adam(self.d.parameters(), lr=lr, betas=(0.5, 0.999))

    def train_step(self, rgb: torch.Tensor) -> float:
        self.g.train()
        self.d.train()
        lab = rgb_uint8_to_lab(rgb)
        L, ab = lab[:, :1], lab[:, 1:]
        colourful = _colourful(ab)
        fake = self.g(L)
        real_logits, fake_logits = self.d(L, ab), self.d(L, fake.detach())
        d_loss = 0.5 * (
            F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        )
        self.d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self.d_opt.step()
        self.d.requires_grad_(False)  # as pix2pix's set_requires_grad: G's backward skips D's weights
        fake_logits = self.d(L, fake)
        adversarial = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
        recon = _masked_mean(((fake - ab) / AB_SCALE).abs().mean(dim=1), colourful)
        g_loss = adversarial + self.lambda_l1 * recon
        self.g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        self.g_opt.step()
        self.d.requires_grad_(True)
        return g_loss

    @torch.inference_mode()
    def infer(self, L: torch.Tensor) -> torch.Tensor:
        self.g.eval()
        return self.g(L)
