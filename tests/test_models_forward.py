"""Every backbone with both heads and every activation, forward at 64 px (patchnet at 32), width 1/16."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from colorjax.bins import zhang_bins
from colorjax.inference import Colorizer
from colorjax.models import ACTIVATIONS, Activation, build_model

OPTIONS = {"eccv16": {}, "unet": {"depth": 3}, "pix2pix": {"num_downs": 6}, "patchnet": {}}
SIZE = {"eccv16": 64, "unet": 64, "pix2pix": 64, "patchnet": 32}
OUT_SIZE = {"eccv16": 16, "unet": 64, "pix2pix": 64, "patchnet": 16}
WIDTH = 1 / 16


def rngs(seed=0):
    return nnx.Rngs(jax.random.key(seed, impl="rbg"))


def make(backbone, head, activation=None, **kwargs):
    return build_model(backbone, head, width=WIDTH, activation=activation, rngs=rngs(), **OPTIONS[backbone], **kwargs)


def lightness(backbone, batch=2, seed=3):
    size = SIZE[backbone]
    return jax.random.uniform(jax.random.key(seed), (batch, size, size, 1), minval=0.0, maxval=100.0)


@pytest.mark.parametrize("head", ["regression", "classification"])
@pytest.mark.parametrize("backbone", sorted(OPTIONS))
def test_forward_shapes_ranges_and_modes(backbone, head):
    model = make(backbone, head)  # the paper's activations
    L = lightness(backbone)
    channels = 2 if head == "regression" else 313
    out_train = model(L)
    assert out_train.shape == (2, OUT_SIZE[backbone], OUT_SIZE[backbone], channels)
    assert np.isfinite(np.asarray(out_train)).all()

    model.eval()
    out = model(L)
    # In evaluation mode each image is independent of the rest of the batch (running statistics).
    np.testing.assert_allclose(model(L[::-1]), out[::-1], rtol=1e-4, atol=1e-4)
    ab = model.predict_ab(L)
    assert ab.shape == (2, OUT_SIZE[backbone], OUT_SIZE[backbone], 2)
    if head == "regression":
        assert np.abs(np.asarray(ab)).max() <= 110.0
    else:  # an annealed mean lies inside the box of the bin centres
        box = zhang_bins()
        assert (np.asarray(ab).min((0, 1, 2)) >= box.min(0) - 1e-3).all()
        assert (np.asarray(ab).max((0, 1, 2)) <= box.max(0) + 1e-3).all()


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("backbone", sorted(OPTIONS))
def test_every_activation_in_every_backbone(backbone, activation):
    """The head only sets the last layer's width, so one head suffices here (both are run above)."""
    model = make(backbone, "regression", activation)
    kinds = {act.kind for _, act in nnx.iter_modules(model) if isinstance(act, Activation)}
    assert kinds == {activation}
    model.eval()
    L = lightness(backbone)
    out = model(L)
    assert out.shape == (2, OUT_SIZE[backbone], OUT_SIZE[backbone], 2)
    assert np.isfinite(np.asarray(out)).all() and np.abs(np.asarray(out)).max() <= 110.0


def test_rrelu_makes_training_forward_random_and_evaluation_deterministic():
    model = make("patchnet", "regression", "rrelu", batch_norm=False)
    L = lightness("patchnet")
    assert not np.allclose(model(L), model(L))
    model.eval()
    np.testing.assert_array_equal(model(L), model(L))


@pytest.mark.parametrize("backbone", ["unet", "pix2pix"])
def test_dropout_is_random_in_training_and_off_in_evaluation(backbone):
    model = make(backbone, "regression", batch_norm=False)
    L = lightness(backbone)
    assert not np.allclose(model(L), model(L))
    model.eval()
    np.testing.assert_array_equal(model(L), model(L))


def test_training_mode_updates_batch_statistics_and_evaluation_does_not():
    model = make("patchnet", "regression")
    norm = model.backbone.norms[0]
    model(lightness("patchnet"))
    moved = np.asarray(norm.mean[...]).copy()
    assert np.abs(moved).max() > 0  # momentum 0.9: 10 % of the batch mean
    model.eval()
    model(lightness("patchnet", seed=4))
    np.testing.assert_array_equal(norm.mean[...], moved)


def test_batch_norm_can_be_switched_off():
    model = make("eccv16", "regression", batch_norm=False)
    assert not nnx.state(model, nnx.BatchStat)


def colorize_lab(model, L, size):
    """Lab of the inference path: the full-resolution L and the colorizer's ab lifted onto it."""
    return np.concatenate([L, Colorizer(model, size=size).ab_at_full_resolution(L)], axis=-1)


def test_colorize_lab_keeps_full_resolution_L_and_upsamples_ab():
    model = make("eccv16", "classification")
    model.eval()
    L = jax.random.uniform(jax.random.key(5), (2, 50, 70, 1), minval=0, maxval=100)
    lab = colorize_lab(model, L, size=64)
    assert lab.shape == (2, 50, 70, 3)
    np.testing.assert_array_equal(lab[..., :1], L)
    small = model.predict_ab(jax.image.resize(L, (2, 64, 64, 1), "linear"))
    np.testing.assert_allclose(lab[..., 1:], jax.image.resize(small, (2, 50, 70, 2), "linear"), atol=1e-4)


def test_colorize_lab_pads_valid_convolution_nets_to_cover_the_image():
    model = make("patchnet", "regression")
    lab = colorize_lab(model, jnp.full((2, 40, 30, 1), 60.0), size=16)  # the net sees 16 + 2 x 8
    assert lab.shape == (2, 40, 30, 3)
    # a constant L gives a constant ab away from the zero padding's reach (valid convs: none)
    assert np.ptp(np.asarray(lab[..., 1:]), axis=(1, 2)).max() < 1e-3


def test_bad_configs_and_inputs_are_refused():
    with pytest.raises(ValueError, match="unknown backbone"):
        build_model("resnet", "regression", rngs=rngs())
    with pytest.raises(ValueError, match="unknown head"):
        build_model("unet", "segmentation", rngs=rngs())
    with pytest.raises(ValueError, match="unknown activation"):
        build_model("unet", "regression", activation="gelu", rngs=rngs())
    with pytest.raises(ValueError, match="unet takes no option bn_affine"):
        build_model("unet", "regression", bn_affine=True, rngs=rngs())
    with pytest.raises(ValueError, match=r"bin centres must have shape \[Q, 2\]"):
        build_model("patchnet", "classification", centres=np.zeros((5, 3)), rngs=rngs())
    model = make("eccv16", "regression")
    with pytest.raises(ValueError, match="divisible by 8"):
        model(jnp.zeros((1, 60, 60, 1)))
    with pytest.raises(ValueError, match=r"\[B, H, W, 1\]"):
        model(jnp.zeros((1, 64, 64, 3)))
