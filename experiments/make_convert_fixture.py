"""Write the converter's parity fixture into tests/fixtures/ (needs torch; not run by CI).

    pip install torch  # CPU wheel is enough
    python experiments/make_convert_fixture.py

Files written (all small, committed):
- ``eccv16_w16.pth``: ECCV16 at width 1/16 in the official key layout, random weights, random
  BatchNorm statistics and affine values; ``eccv16_w16_outputs.npz``: input L [2, 32, 32, 1] and the
  PyTorch eval-mode outputs (NHWC): ``logits`` (model8.6), ``ab_release`` (110 * model_out(softmax)),
  and ``logits_identity_bn`` for image 0 after setting every BatchNorm weight to 1 and bias to 0 (the
  layout of the release, whose Caffe BatchNorm has no affine part).
- ``siggraph17_w16.pth``: SIGGRAPH17 at width 1/16 in the release's key layout, random weights,
  BatchNorm statistics and affine values; ``siggraph17_w16_outputs.npz``: L [2, 32, 32, 1], hints
  ``hint_ab`` [2, 32, 32, 2] / ``hint_mask`` [2, 32, 32, 1] (image 0: 3 hinted 2 x 2 patches, image
  1: none), and the eval outputs ``ab`` (110 tanh(model_out), full resolution) and ``logits``
  (model_class, 1/4 resolution) with those hints, ``ab_no_hints`` / ``logits_no_hints`` without.
- ``vgg16_w8.pth``: torchvision-layout VGG16 features, first 4 convs at width 1/8, plus a
  classifier entry the converter must ignore; ``vgg16_w8_legacy.pth``: the same in torch's pre-1.6
  (non-zip) format; ``vgg16_w8_outputs.npz``: RGB [1, 16, 16, 3] and relu1_2 / conv2_2 (NHWC).
- ``pix2pix_w32.pth``: the pix2pix generator (6 levels) and PatchGAN at width 1/32 in the authors'
  layout, random BatchNorm statistics; ``pix2pix_w32_outputs.npz``: L, ab and their eval outputs.
- ``tensors.pth`` / ``tensors.npz``: tensors of several dtypes, a strided view with an offset and
  a transpose sharing one storage, to pin down storage decoding.
"""

from __future__ import annotations

import pathlib

import numpy as np
import torch

from torch_reference import (
    ECCV16Torch, PatchDiscriminatorTorch, Pix2PixGeneratorTorch, SIGGRAPH17Torch, vgg16_features_torch,
)

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures"
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def nhwc(t: torch.Tensor) -> np.ndarray:
    return t.detach().permute(0, 2, 3, 1).numpy().astype(np.float32)


def randomise_batch_norms(net: torch.nn.Module, generator: torch.Generator) -> None:
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.5)
            module.running_var.copy_(torch.rand(n, generator=generator) * 1.5 + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(n, generator=generator) * 0.2)
            module.num_batches_tracked.fill_(1000)


def eccv16_fixture(generator: torch.Generator) -> None:
    net = ECCV16Torch(width=1 / 16)
    randomise_batch_norms(net, generator)
    net.model8[6].weight.data.mul_(20.0)  # logits of a few units, like a trained net's, not ~0.1
    net.model_out.weight.data.copy_(torch.randn(2, 313, 1, 1, generator=generator) * 0.5)
    net.eval()
    L = torch.rand(2, 1, 32, 32, generator=generator) * 100
    with torch.no_grad():
        logits, ab = net(L)
        torch.save(net.state_dict(), FIXTURES / "eccv16_w16.pth")
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.data.fill_(1.0)
                module.bias.data.zero_()
        logits_identity, _ = net(L[:1])
    np.savez(
        FIXTURES / "eccv16_w16_outputs.npz",
        L=nhwc(L), logits=nhwc(logits), ab_release=nhwc(ab), logits_identity_bn=nhwc(logits_identity),
    )
    print(f"eccv16: logits std {logits.std():.3f}, max |logit| {logits.abs().max():.3f}")


def siggraph17_fixture(generator: torch.Generator) -> None:
    net = SIGGRAPH17Torch(width=1 / 16)
    randomise_batch_norms(net, generator)
    net.model_out[0].weight.data.mul_(5.0)  # ab spread over tens of units, not squashed near 0
    net.model1[0].weight.data[:, 1:].mul_(10.0)  # hints that move the output by many ab units
    net.eval()
    L = torch.rand(2, 1, 32, 32, generator=generator) * 100
    hint_ab = torch.zeros(2, 2, 32, 32)
    hint_mask = torch.zeros(2, 1, 32, 32)
    for y, x in ((4, 6), (17, 20), (27, 9)):  # image 0: three 2 x 2 patches; image 1: no hint
        hint_ab[0, :, y : y + 2, x : x + 2] = ((torch.rand(2, 1, 1, generator=generator) - 0.5) * 160)
        hint_mask[0, :, y : y + 2, x : x + 2] = 1.0
    with torch.no_grad():
        ab, logits = net(L, hint_ab, hint_mask)
        ab_none, logits_none = net(L)
    torch.save(net.state_dict(), FIXTURES / "siggraph17_w16.pth")
    np.savez(
        FIXTURES / "siggraph17_w16_outputs.npz", L=nhwc(L), hint_ab=nhwc(hint_ab), hint_mask=nhwc(hint_mask),
        ab=nhwc(ab), logits=nhwc(logits), ab_no_hints=nhwc(ab_none), logits_no_hints=nhwc(logits_none),
    )
    print(f"siggraph17: ab std {ab.std():.2f}, hints move ab by up to {(ab - ab_none).abs().max():.2f}")


def vgg16_fixture(generator: torch.Generator) -> None:
    features = vgg16_features_torch(num_convs=4, width=1 / 8).eval()
    state = dict(features.state_dict())
    state = {f"features.{key}": value for key, value in state.items()}
    state["classifier.6.bias"] = torch.zeros(10)  # present in torchvision's files, not ours to load
    torch.save(state, FIXTURES / "vgg16_w8.pth")
    torch.save(state, FIXTURES / "vgg16_w8_legacy.pth", _use_new_zipfile_serialization=False)
    rgb = torch.rand(1, 3, 16, 16, generator=generator)
    with torch.no_grad():
        x = (rgb - IMAGENET_MEAN) / IMAGENET_STD
        relu1_2 = features[:4](x)
        conv2_2 = features[:8](x)  # 0 conv1_1 ... 4 pool, 5 conv2_1, 6 ReLU, 7 conv2_2
    np.savez(FIXTURES / "vgg16_w8_outputs.npz", rgb=nhwc(rgb), relu1_2=nhwc(relu1_2), conv2_2=nhwc(conv2_2))


def tensors_fixture(generator: torch.Generator) -> None:
    base = torch.randn(6, 5, generator=generator)
    tensors = {
        "float32": base,
        "view": base[1:, ::2],  # shares base's storage: offset 5, strides (5, 2)
        "transpose": base.t(),
        "float16": torch.randn(3, 4, generator=generator).half(),
        "float64": torch.randn(7, generator=generator).double(),
        "int64": torch.arange(-3, 9),
        "uint8": torch.arange(0, 250, 10, dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(2.5),
    }
    torch.save({"tensors": tensors, "meta": {"epoch": 3, "name": "fixture", "shape": (1, 2)}}, FIXTURES / "tensors.pth")
    np.savez(FIXTURES / "tensors.npz", **{k: v.numpy() for k, v in tensors.items()})


def pix2pix_fixture(generator: torch.Generator) -> None:
    net = Pix2PixGeneratorTorch(num_downs=6, width=1 / 32)
    disc = PatchDiscriminatorTorch(n_layers=3, width=1 / 32)
    for module in (net, disc):
        randomise_batch_norms(module, generator)
        module.eval()
    L = torch.rand(2, 1, 64, 64, generator=generator) * 100
    ab = (torch.rand(2, 2, 64, 64, generator=generator) - 0.5) * 160
    with torch.no_grad():
        ab_pred, patch_logits = net(L), disc(L, ab)
    torch.save({"generator": net.state_dict(), "discriminator": disc.state_dict()}, FIXTURES / "pix2pix_w32.pth")
    np.savez(FIXTURES / "pix2pix_w32_outputs.npz", L=nhwc(L), ab=nhwc(ab), ab_pred=nhwc(ab_pred),
             patch_logits=nhwc(patch_logits))


def main() -> None:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    eccv16_fixture(generator)
    vgg16_fixture(generator)
    tensors_fixture(generator)
    pix2pix_fixture(generator)
    siggraph17_fixture(generator)  # last: the earlier fixtures keep their random draws
    for path in sorted(FIXTURES.iterdir()):
        print(f"{path.name}: {path.stat().st_size / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
