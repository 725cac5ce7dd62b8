"""Simulated training hints (Zhang, Zhu et al. 2017) and a user-guided training run."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from colorjax.training.simulated_hints import (
    HintSampling, batch_key, draw_hint_points, draw_hints, geometric_counts, patch_means, simulate_hints,
)

EXPERIMENTS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "experiments", "configs")


def test_geometric_counts_follow_p_one_eighth():
    n = np.asarray(geometric_counts(jax.random.key(0), 200_000, 1 / 8, 64))
    assert abs((n == 0).mean() - 1 / 8) < 0.005  # P(0) = p: zero hints allowed
    assert abs((n == 1).mean() - 7 / 64) < 0.005  # P(1) = (1 - p) p
    assert abs(n.mean() - 7) < 0.1  # mean (1 - p) / p, the cap at 64 changes it by < 0.01
    assert n.max() <= 64


def test_patch_means_match_numpy():
    ab = jax.random.normal(jax.random.key(1), (2, 12, 10, 2)) * 30
    top, left, side = jnp.array([[0, 5], [-2, 9]]), jnp.array([[0, 3], [8, -1]]), jnp.array([[3, 4], [5, 3]])
    got = np.asarray(patch_means(ab, top, left, side))
    a = np.asarray(ab)
    for b in range(2):
        for k in range(2):
            t, l, s = int(top[b, k]), int(left[b, k]), int(side[b, k])
            patch = a[b, max(t, 0) : t + s, max(l, 0) : l + s]
            np.testing.assert_allclose(got[b, k], patch.reshape(-1, 2).mean(0), atol=1e-4)


def test_drawn_hints_are_patch_means_on_their_masks():
    ab = jnp.tile(jnp.arange(16.0)[None, :, None, None], (3, 1, 16, 2))  # a = b = row index
    sampling = HintSampling(max_points=4)
    hints = np.asarray(draw_hints(jax.random.key(2), ab, jnp.array([0, 1, 4]), sampling, side=3))
    assert hints[0].sum() == 0  # zero points: no hint at all
    mask = hints[1, ..., 2]
    assert mask.sum() <= 9 and mask.sum() >= 4  # one 3 x 3 patch (clipped at an edge)
    rows = np.nonzero(mask.any(axis=1))[0]
    np.testing.assert_allclose(hints[1, mask > 0, 0], rows.mean(), atol=1e-4)  # the patch's mean a
    assert hints[2, ..., 2].sum() >= hints[1, ..., 2].sum()
    assert set(np.unique(hints[..., 2])) <= {0.0, 1.0}


def test_hint_points_are_the_centres_of_their_patches():
    ab = jax.random.normal(jax.random.key(5), (2, 20, 24, 2)) * 30
    sampling = HintSampling(max_points=6)
    counts = jnp.array([2, 6])
    hints, rows, cols, active = (np.asarray(x) for x in draw_hint_points(jax.random.key(6), ab, counts, sampling))
    np.testing.assert_array_equal(hints, draw_hints(jax.random.key(6), ab, counts, sampling))
    np.testing.assert_array_equal(active.sum(1), [2, 6])
    assert (rows >= 0).all() and (rows < 20).all() and (cols >= 0).all() and (cols < 24).all()
    images = np.arange(2)[:, None]
    assert (hints[images, rows, cols, 2][active] == 1).all()  # every active point lies on its patch


def test_simulated_hints_cover_the_counts_and_differ_per_batch():
    rgb = jnp.asarray(np.random.default_rng(0).integers(0, 255, (8, 32, 32, 3), np.uint8))
    ab = jax.random.normal(jax.random.key(3), (8, 32, 32, 2)) * 20
    sampling = HintSampling()
    first = simulate_hints(batch_key(0, rgb), ab, sampling)
    again = simulate_hints(batch_key(0, rgb), ab, sampling)
    other = simulate_hints(batch_key(0, rgb[::-1]), ab, sampling)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    with pytest.raises(ValueError, match="hints.placement"):
        HintSampling(placement="corners")


@pytest.mark.slow
def test_user_guided_config_trains_with_hints_and_the_auxiliary_loss(tmp_path):
    from colorjax.training.commands import load_config_file
    from colorjax.training.trainer import train
    from colorjax.training.trainer import hint_options

    config = load_config_file(os.path.join(EXPERIMENTS, "user_guided.py") + ":tiny")
    assert config.model.backbone == "siggraph17" and config.loss.pixel == "huber"
    assert config.loss.huber_delta == pytest.approx(1 / 110)
    options = hint_options(config)
    assert options["hints"].p == 1 / 8 and options["class_weight"] == pytest.approx(1 / 110**2) and len(options["class_centres"]) == 529
    config.data.spec, config.data.eval_split = "embedded", "validation"
    config.data.crop_size, config.data.batch_size, config.data.eval_batch_size = 32, 8, 8
    config.model.width = 1 / 16
    config.train.num_steps, config.train.checkpoint_every, config.train.log_every = 2, 2, 1
    config.train.eval_images, config.train.tensorboard = 8, False
    result = train(config, tmp_path / "run")
    losses = [h["loss"] for h in result["train"]]
    # the classification CE (log 529 at init) is in the loss, weighted by 1 / 110^2 as the Huber term
    assert all(np.isfinite(losses)) and losses[0] > np.log(529) * 0.9 / 110**2


def test_picture_hints_spread_over_the_photo():
    from experiments.hints_picture import load_photo, photo_hints

    from colorjax.color import rgb_uint8_to_lab

    rgb = load_photo("skimage:chelsea")
    hints = photo_hints(rgb, 10)
    points = {(h.x, h.y) for h in hints}
    assert len(points) == 10 and all(0 <= h.x < rgb.shape[1] and 0 <= h.y < rgb.shape[0] for h in hints)
    lab = np.asarray(rgb_uint8_to_lab(rgb))
    first = hints[0]
    expected = lab[first.y - 2 : first.y + 3, first.x - 2 : first.x + 3, 1:].reshape(-1, 2).mean(0)
    np.testing.assert_allclose(first.ab, expected, atol=1e-3)  # the 5 x 5 mean of the original
    assert np.hypot(*first.ab) >= max(np.hypot(*h.ab) for h in hints)  # the most colourful comes first


def _shipped_photos(size: int) -> np.ndarray:
    """scikit-image's photos, rescaled to size x size (PIL, bicubic)."""
    from PIL import Image
    from skimage import data

    return np.stack([np.asarray(Image.fromarray(getattr(data, name)()).resize((size, size), Image.BICUBIC))
                     for name in ("astronaut", "coffee", "chelsea", "rocket")])


@pytest.mark.slow
def test_user_guided_loss_lets_the_regression_train_conv1():
    """With the user-guided recipe's weights the Huber term, not the auxiliary cross-entropy, leads
    the gradient at conv1 (the only block that sees the hints at full resolution, feeding the
    conv1 -> conv10 shortcut that copies them): at init about 16 times the weighted cross-entropy's.
    With the classification weight at 1 (the recipe before) the cross-entropy's was about 770 times
    the Huber term's, and the trained net stayed 12-14 ab units away from its hints."""
    import optax
    from flax import nnx

    from colorjax.models import build_model
    from colorjax.models.siggraph17 import siggraph17_bins
    from colorjax.training import losses
    from colorjax.training.commands import load_config_file
    from colorjax.training.steps import Objective, class_loss, lab_batch

    config = load_config_file(os.path.join(EXPERIMENTS, "user_guided.py") + ":tiny")
    assert config.loss.class_weight == pytest.approx(1 / 110**2)
    model = build_model("siggraph17", "regression", width=1 / 16, class_bins=529, rngs=nnx.Rngs(0))
    L, ab, colourful = lab_batch(jnp.asarray(_shipped_photos(32)))
    hints = simulate_hints(jax.random.key(0), ab, HintSampling())
    obj = Objective(head="regression", output_stride=1, class_centres=siggraph17_bins())

    @nnx.jit
    def conv1_gradient_norms(model):
        def huber(model):
            out, _ = model.with_class_logits(L, hints)
            return losses.masked_mean(losses.ab_pixel_loss(out, ab, "huber", config.loss.huber_delta), colourful)

        def cross_entropy(model):
            return class_loss(obj, model.with_class_logits(L, hints)[1], ab, colourful)

        conv1 = lambda grads: optax.tree.norm(grads["backbone"]["model1"])  # noqa: E731
        return conv1(nnx.grad(huber)(model)), conv1(nnx.grad(cross_entropy)(model))

    regression, classification = (float(g) for g in conv1_gradient_norms(model))
    assert 3 < regression / (config.loss.class_weight * classification) < 100  # measured: 16
    assert regression / classification < 0.01  # the old weight of 1 (measured: 1 / 770)
