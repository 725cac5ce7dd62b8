"""PyTorch reference networks, written from the papers' descriptions in the official key layouts.

Used by ``tests/fixtures/make_convert_fixture.py`` (the converter's parity fixture) and by benchmarks that compare
against PyTorch; the colorjax library never imports this file (nor torch).

- :class:`ECCV16Torch`: Zhang et al.'s ECCV16 net with the state-dict keys of the official PyTorch
  port (``model1.0`` ... ``model8.6``, ``model_out``) and a width multiplier.
- :class:`SIGGRAPH17Torch`: Zhang, Zhu et al.'s user-guided net (SIGGRAPH 2017) with the keys of the
  official PyTorch release (``model1.0`` ... ``model10.1``, ``model8up`` ... ``model1short10``,
  ``model_class``, ``model_out``) and a width multiplier.
- :class:`Pix2PixGeneratorTorch`: the pix2pix ``unet_256`` generator (num_downs levels).
- :class:`PatchDiscriminatorTorch`: the pix2pix 70 x 70 PatchGAN.
- :func:`vgg16_features_torch`: ``nn.Sequential`` in torchvision's ``vgg16().features`` layout.
"""

from __future__ import annotations

import torch
from torch import nn

AB_SCALE = 110.0
VGG16_BLOCKS = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))


def scaled(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


def _convs(channels, out, n, *, stride=1, dilation=1, batch_norm=True):
    layers = []
    for i in range(n):
        last = i == n - 1
        layers += [
            nn.Conv2d(channels, out, 3, stride=stride if last else 1, padding=dilation, dilation=dilation),
            nn.ReLU(True),
        ]
        channels = out
    if batch_norm:
        layers.append(nn.BatchNorm2d(out))
    return nn.Sequential(*layers)


class ECCV16Torch(nn.Module):
    """ECCV16 with the official key layout; forward returns (logits, ab at 1/4 resolution)."""

    def __init__(self, width: float = 1.0, num_bins: int = 313):
        super().__init__()
        c = lambda n: scaled(n, width)  # noqa: E731
        self.model1 = _convs(1, c(64), 2, stride=2)
        self.model2 = _convs(c(64), c(128), 2, stride=2)
        self.model3 = _convs(c(128), c(256), 3, stride=2)
        self.model4 = _convs(c(256), c(512), 3)
        self.model5 = _convs(c(512), c(512), 3, dilation=2)
        self.model6 = _convs(c(512), c(512), 3, dilation=2)
        self.model7 = _convs(c(512), c(512), 3)
        self.model8 = nn.Sequential(
            nn.ConvTranspose2d(c(512), c(256), 4, stride=2, padding=1), nn.ReLU(True),
            nn.Conv2d(c(256), c(256), 3, padding=1), nn.ReLU(True),
            nn.Conv2d(c(256), c(256), 3, padding=1), nn.ReLU(True),
            nn.Conv2d(c(256), num_bins, 1),
        )
        self.softmax = nn.Softmax(dim=1)
        self.model_out = nn.Conv2d(num_bins, 2, 1, bias=False)

    def forward(self, L: torch.Tensor):
        x = (L - 50.0) / 100.0
        for block in (self.model1, self.model2, self.model3, self.model4, self.model5, self.model6, self.model7):
            x = block(x)
        logits = self.model8(x)
        return logits, AB_SCALE * self.model_out(self.softmax(logits))


def _stride1_convs(channels, out, n, *, dilation=1):
    """SIGGRAPH17's encoder block: n (conv, ReLU) pairs, all stride 1, then BatchNorm."""
    layers = []
    for _ in range(n):
        layers += [nn.Conv2d(channels, out, 3, padding=dilation, dilation=dilation), nn.ReLU(True)]
        channels = out
    return nn.Sequential(*layers, nn.BatchNorm2d(out))


class SIGGRAPH17Torch(nn.Module):
    """SIGGRAPH17 with the release's key layout; forward returns (ab at full resolution, logits at 1/4)."""

    def __init__(self, width: float = 1.0, num_bins: int = 529):
        super().__init__()
        c = lambda n: scaled(n, width)  # noqa: E731
        self.model1 = _stride1_convs(4, c(64), 2)
        self.model2 = _stride1_convs(c(64), c(128), 2)
        self.model3 = _stride1_convs(c(128), c(256), 3)
        self.model4 = _stride1_convs(c(256), c(512), 3)
        self.model5 = _stride1_convs(c(512), c(512), 3, dilation=2)
        self.model6 = _stride1_convs(c(512), c(512), 3, dilation=2)
        self.model7 = _stride1_convs(c(512), c(512), 3)
        self.model8up = nn.Sequential(nn.ConvTranspose2d(c(512), c(256), 4, stride=2, padding=1))
        self.model3short8 = nn.Sequential(nn.Conv2d(c(256), c(256), 3, padding=1))
        self.model8 = nn.Sequential(
            nn.ReLU(True), nn.Conv2d(c(256), c(256), 3, padding=1), nn.ReLU(True),
            nn.Conv2d(c(256), c(256), 3, padding=1), nn.ReLU(True), nn.BatchNorm2d(c(256)),
        )
        self.model9up = nn.Sequential(nn.ConvTranspose2d(c(256), c(128), 4, stride=2, padding=1))
        self.model2short9 = nn.Sequential(nn.Conv2d(c(128), c(128), 3, padding=1))
        self.model9 = nn.Sequential(
            nn.ReLU(True), nn.Conv2d(c(128), c(128), 3, padding=1), nn.ReLU(True), nn.BatchNorm2d(c(128)),
        )
        self.model10up = nn.Sequential(nn.ConvTranspose2d(c(128), c(128), 4, stride=2, padding=1))
        self.model1short10 = nn.Sequential(nn.Conv2d(c(64), c(128), 3, padding=1))
        self.model10 = nn.Sequential(nn.ReLU(True), nn.Conv2d(c(128), c(128), 3, padding=1), nn.LeakyReLU(0.2))
        self.model_class = nn.Sequential(nn.Conv2d(c(256), num_bins, 1))
        self.model_out = nn.Sequential(nn.Conv2d(c(128), 2, 1), nn.Tanh())

    def forward(self, L: torch.Tensor, hint_ab: torch.Tensor | None = None, hint_mask: torch.Tensor | None = None):
        if hint_ab is None:
            hint_ab = torch.cat([L * 0, L * 0], 1)
        if hint_mask is None:
            hint_mask = L * 0
        conv1 = self.model1(torch.cat([(L - 50.0) / 100.0, hint_ab / AB_SCALE, hint_mask], 1))
        conv2 = self.model2(conv1[:, :, ::2, ::2])
        conv3 = self.model3(conv2[:, :, ::2, ::2])
        x = self.model4(conv3[:, :, ::2, ::2])
        x = self.model7(self.model6(self.model5(x)))
        conv8 = self.model8(self.model8up(x) + self.model3short8(conv3))
        conv9 = self.model9(self.model9up(conv8) + self.model2short9(conv2))
        conv10 = self.model10(self.model10up(conv9) + self.model1short10(conv1))
        return AB_SCALE * self.model_out(conv10), self.model_class(conv8)


class _UNetBlock(nn.Module):
    """One pix2pix U-Net level around ``inner`` (None for the innermost), as the authors build it."""

    def __init__(self, outer, inner_nc, inner, *, in_nc=None, out_nc=None, outermost=False, dropout=False):
        super().__init__()
        in_nc = in_nc or outer
        down = nn.Conv2d(in_nc, inner_nc, 4, stride=2, padding=1, bias=False)
        self.outermost = outermost
        if outermost:
            up = nn.ConvTranspose2d(inner_nc * 2, out_nc, 4, stride=2, padding=1)
            layers = [down, inner, nn.ReLU(True), up]
        elif inner is None:
            up = nn.ConvTranspose2d(inner_nc, outer, 4, stride=2, padding=1, bias=False)
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True), up, nn.BatchNorm2d(outer)]
        else:
            up = nn.ConvTranspose2d(inner_nc * 2, outer, 4, stride=2, padding=1, bias=False)
            layers = [nn.LeakyReLU(0.2, True), down, nn.BatchNorm2d(inner_nc), inner,
                      nn.ReLU(True), up, nn.BatchNorm2d(outer)]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class Pix2PixGeneratorTorch(nn.Module):
    """pix2pix U-Net generator: L in [0, 100] -> 110 * tanh(.) ab, ``num_downs`` levels."""

    def __init__(self, num_downs: int = 8, width: float = 1.0, num_dropout: int | None = None):
        super().__init__()
        num_dropout = max(num_downs - 5, 0) if num_dropout is None else num_dropout  # the authors' unet_256
        inner = [scaled(64 * min(2**i, 8), width) for i in range(num_downs)]
        block = None
        for i in reversed(range(num_downs)):
            dropout = num_downs - 1 - num_dropout <= i < num_downs - 1
            if i == 0:
                block = _UNetBlock(None, inner[0], block, in_nc=1, out_nc=2, outermost=True)
            else:
                block = _UNetBlock(inner[i - 1], inner[i], block, dropout=dropout)
        self.model = block

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        return AB_SCALE * torch.tanh(self.model(L / 50.0 - 1.0))


class PatchDiscriminatorTorch(nn.Module):
    """The 70 x 70 PatchGAN (``n_layers=3``) on concat(L / 50 - 1, ab / 110), authors' key layout."""

    def __init__(self, n_layers: int = 3, width: float = 1.0):
        super().__init__()
        widths = [scaled(64 * min(2**i, 8), width) for i in range(n_layers + 1)]
        layers = [nn.Conv2d(3, widths[0], 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        for i in range(1, n_layers + 1):
            stride = 2 if i < n_layers else 1
            layers += [nn.Conv2d(widths[i - 1], widths[i], 4, stride=stride, padding=1, bias=False),
                       nn.BatchNorm2d(widths[i]), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(widths[-1], 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        return self.model(torch.cat([L / 50.0 - 1.0, ab / AB_SCALE], 1))


def vgg16_features_torch(num_convs: int = 13, width: float = 1.0) -> nn.Sequential:
    """torchvision's ``vgg16().features`` layout (conv, ReLU ..., max pool), first ``num_convs`` convs."""
    layers, channels, made = [], 3, 0
    for n, out in VGG16_BLOCKS:
        for _ in range(n):
            if made == num_convs:
                return nn.Sequential(*layers)
            layers += [nn.Conv2d(channels, scaled(out, width), 3, padding=1), nn.ReLU(True)]
            channels, made = scaled(out, width), made + 1
        layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers)
