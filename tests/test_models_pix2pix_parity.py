"""The pix2pix generator and PatchGAN against PyTorch implementations in the authors' layout
(tests/fixtures/torch_reference.py; outputs saved in tests/fixtures by make_convert_fixture.py)."""

import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from colorjax.convert.mapping import batch_norm_targets, conv_targets, load_into
from colorjax.convert.pth_reader import load_pth
from colorjax.models import PatchDiscriminator, build_model

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def generator_targets(generator) -> dict:
    """Keys of the authors' nested UnetSkipConnectionBlock layout -> our levels."""
    levels = generator.levels
    targets = conv_targets("model.model.0", levels[0].down) | conv_targets("model.model.3", levels[0].up)
    prefix = "model.model.1"
    for i, level in enumerate(levels[1:], start=1):
        if i < len(levels) - 1:  # down conv, down norm, inner block, ReLU, up conv, up norm
            targets |= conv_targets(f"{prefix}.model.1", level.down) | batch_norm_targets(f"{prefix}.model.2", level.down_norm)
            targets |= conv_targets(f"{prefix}.model.5", level.up) | batch_norm_targets(f"{prefix}.model.6", level.up_norm)
            prefix += ".model.3"
        else:  # innermost: LeakyReLU, down conv, ReLU, up conv, up norm
            targets |= conv_targets(f"{prefix}.model.1", level.down) | conv_targets(f"{prefix}.model.3", level.up)
            targets |= batch_norm_targets(f"{prefix}.model.4", level.up_norm)
    return targets


def discriminator_targets(disc) -> dict:
    targets = conv_targets("model.0", disc.convs[0]) | conv_targets("model.11", disc.final)
    for i, (layer, norm) in enumerate(zip(disc.convs[1:], disc.norms[1:])):
        targets |= conv_targets(f"model.{3 * i + 2}", layer) | batch_norm_targets(f"model.{3 * i + 3}", norm)
    return targets


def test_generator_and_patchgan_match_the_pytorch_reference_in_eval_mode():
    saved = load_pth(os.path.join(FIXTURES, "pix2pix_w32.pth"))
    reference = np.load(os.path.join(FIXTURES, "pix2pix_w32_outputs.npz"))
    rngs = nnx.Rngs(jax.random.key(0, impl="rbg"))
    model = build_model("pix2pix", "regression", width=1 / 32, num_downs=6, rngs=rngs)
    disc = PatchDiscriminator(width=1 / 32, rngs=rngs)
    for module, targets, state in ((model.backbone, generator_targets, saved["generator"]),
                                   (disc, discriminator_targets, saved["discriminator"])):
        ignored = {key for key in state if key.endswith("num_batches_tracked")}
        load_into(targets(module), state, "pix2pix_w32.pth", ignored)
        module.eval()
    L, ab = jnp.asarray(reference["L"]), jnp.asarray(reference["ab"])
    assert np.abs(model(L) - reference["ab_pred"]).max() < 1e-3  # ab in Lab units, up to 110
    assert np.abs(disc(L, ab) - reference["patch_logits"]).max() < 1e-4
    assert disc(L, ab).shape == (2, 6, 6, 1)
