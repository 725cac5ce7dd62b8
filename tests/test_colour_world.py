"""The procedural colour world (colorjax.data.colour_world) and the prior-counting fix it exposed."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from colorjax import color
from colorjax.bins import zhang_bins
from colorjax.data import colour_world as world


def test_scenes_hold_their_class_colours_and_are_seeded():
    a, b = world.scenes(8, seed=3, size=64), world.scenes(8, seed=3, size=64)
    assert all(np.array_equal(x.rgb, y.rgb) for x, y in zip(a, b))
    assert not np.array_equal(a[0].rgb, world.scenes(1, seed=4)[0].rgb)
    for scene in a:
        lab = np.asarray(color.rgb_uint8_to_lab(scene.rgb))
        # 8-bit rounding moves ab by about a unit at most: the colours are inside the gamut.
        assert np.abs(lab[..., 1:] - world.intended_ab(scene)).max() < 1.5
    assert world.scenes(1, seed=0, size=32)[0].rgb.shape == (32, 32, 3)


def test_lightness_carries_no_information_about_the_class():
    """Every class has the same distribution of L (a chi-square-sized gap between histograms), and
    the classes have the frequencies the module promises: a rare colour of a few percent."""
    batch = world.scenes(150, seed=1)
    labels = np.stack([s.labels for s in batch])
    lab = np.asarray(color.rgb_uint8_to_lab(np.stack([s.rgb for s in batch])))
    hist = world.lightness_by_class(lab, labels, bins=8)
    assert np.abs(hist - hist.mean(0)).max() < 0.06, hist
    # The mean L of each class agrees within half a unit (the range of region means is 16 units).
    means = [lab[..., 0][labels == c].mean() for c in range(len(world.CLASSES))]
    assert max(means) - min(means) < 1.5, means
    fractions = world.pixel_fractions(labels)
    assert 0.01 < fractions[world.RARE] < 0.05 and fractions[world.GRASS] > 0.6
    # The two balloon colours are equally likely (a binomial 3-sigma band over 150 scenes).
    assert abs(np.mean([s.balloon_colour for s in batch]) - 0.5) < 3 * 0.5 / np.sqrt(150)


def test_bayes_rules_by_hand():
    labels = np.array([[world.GRASS, world.BALLOON], [world.STONE, world.FLOWER]])
    # L2: the balloon's midpoint of (40, 30) and (0, -40) = (20, -5); the others their colour.
    np.testing.assert_allclose(world.bayes_ab(labels, "mean"), [[[-30, 30], [20, -5]], [[0, 0], [50, -20]]])
    np.testing.assert_allclose(world.bayes_ab(labels, "mode")[0, 1], [40, 30])
    fractions = np.array([0.5, 0.25, 0.25, 0.0])
    np.testing.assert_allclose(world.bayes_ab(labels, "lightness_mean", fractions)[1, 1], [-10, 13.75])
    centres = zhang_bins()
    # The symmetric two-colour posterior decodes to the midpoint at any T > 0, to a mode at T = 0.
    for t in (1.0, 0.38, 0.1):
        np.testing.assert_allclose(world.annealed_class_ab(centres, t)[world.BALLOON], [20, -5], atol=1e-3)
    assert tuple(world.annealed_class_ab(centres, 0.0)[world.BALLOON]) in {(40.0, 30.0), (0.0, -40.0)}


def test_per_class_figures_by_hand():
    labels = np.array([[[world.GRASS, world.BALLOON, world.BALLOON, world.FLOWER]]])
    true = np.array([[[[-30, 30], [40, 30], [0, -40], [50, -20]]]], np.float32)
    pred = np.array([[[[-30, 34], [20, -5], [2, -40], [0, 0]]]], np.float32)
    figures = world.class_figures(world.per_image_class_sums(pred, true, labels))
    assert figures["grass_error"] == pytest.approx(4.0)
    assert figures["balloon_error"] == pytest.approx((np.hypot(20, 35) + 2.0) / 2)
    assert figures["balloon_at_mode"] == pytest.approx(50.0) and figures["balloon_nearer_mean"] == pytest.approx(50.0)
    assert figures["flower_accuracy"] == 0.0 and figures["common_accuracy"] == pytest.approx(100 * 2 / 3)


def test_write_folder_makes_splits_and_refuses_to_overwrite(tmp_path):
    root = world.write_folder(tmp_path / "w", train=3, validation=2, size=32)
    assert len(list((root / "train").glob("*.png"))) == 3 and len(list((root / "val").glob("*.png"))) == 2
    with pytest.raises(FileExistsError, match="not empty"):
        world.write_folder(root, train=1)


def _sky_and_grass(seed: int, size: int = 32) -> np.ndarray:
    """A blue sky over green grass (Lab (70, -5, -35) over (50, -40, 30)) with a little L noise."""
    rng = np.random.default_rng(seed)
    lab = np.zeros((size, size, 3), np.float32)
    horizon = rng.integers(size // 3, 2 * size // 3)
    lab[:horizon] = (70, -5, -35)
    lab[horizon:] = (50, -40, 30)
    lab[..., 0] += rng.normal(0, 3, (size, size))
    return np.asarray(np.round(np.asarray(color.lab_to_rgb(lab)) * 255), np.uint8)


@pytest.mark.slow  # a real training run: 24 s here
def test_a_folder_of_blue_skies_and_green_grass_trains(tiny_config, tmp_path):
    """Issue 25, defect 1: the 'some colour was counted' check summed the bin counts with the
    lightness table's signed a and b sums; mean a + b below -2 (here -25) read as 'every image is
    gray'. Counted alone, the colours are there and training runs."""
    from colorjax.training import train

    folder = tmp_path / "sky_and_grass"
    folder.mkdir()
    for i in range(16):
        Image.fromarray(_sky_and_grass(i)).save(folder / f"{i:02d}.png")
    config = tiny_config(**{"data.spec": str(folder), "data.data_dir": str(tmp_path / "tfds"), "train.num_steps": 2,
                            "train.checkpoint_every": 2, "train.eval_images": 0})
    summary = train(config, tmp_path / "run")
    assert summary["steps"] == 2 and np.isfinite(summary["final_train_loss"])
