"""Metrics against hand computations, closed forms and scikit-image."""

import numpy as np
import pytest
from skimage import data, metrics as skm, transform

from colorjax import color, metrics
from colorjax.bins import zhang_bins
from colorjax.metrics import MetricAccumulator, summarise
from colorjax.prior import ColourPrior

LINE = np.array([[0.0, 0.0], [10.0, 0.0], [20.0, 0.0]], np.float32)


def _random_rgb(shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, shape).astype(np.float32)


def _lab_with_integer_ab(shape, seed=0):
    rng = np.random.default_rng(seed)
    lab = np.empty((*shape, 3), np.float32)
    lab[..., 0] = 60.0
    lab[..., 1:] = rng.integers(-20, 21, (*shape, 2))
    return lab


def test_identical_images():
    rgb = _random_rgb((2, 16, 16, 3))
    result = summarise(metrics.batch_metric_sums(rgb, rgb, prior=ColourPrior.uniform(LINE)))
    assert result["rmse"] == 0 and result["psnr"] == np.inf and result["psnr_per_image"] == np.inf
    assert result["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert result["custom_accuracy"] == 1.0
    assert result["auc_raw"] == pytest.approx(100.0) and result["auc_rebalanced"] == pytest.approx(100.0)
    assert result["delta_cf"] == 0 and result["delta_cf_per_image"] == 0
    assert result["num_images"] == 2 and result["num_pixels"] == 512


@pytest.mark.parametrize("offset, auc", [((3.0, 4.0), 100 * (145 + 0.5) / 150), ((1.5, 2.0), 100 * (147 + 0.5) / 150)])
def test_constant_ab_offset_auc_in_closed_form(offset, auc):
    # Distance d everywhere: the fraction within t is 0 for t < d and 1 for t >= d, so the trapezoid
    # area over t = 0..150 is (150 - ceil(d)) + 1/2 (the step), divided by 150.
    true_lab = _lab_with_integer_ab((2, 12, 12))
    pred_lab = true_lab + np.array([0.0, *offset], np.float32)
    prior = ColourPrior.from_counts(np.arange(1.0, 314.0), zhang_bins())
    result = summarise(metrics.batch_metric_sums_lab(pred_lab, true_lab, prior=prior))
    assert result["auc_raw"] == pytest.approx(auc, rel=1e-9)
    assert result["auc_rebalanced"] == pytest.approx(auc, rel=1e-9)  # one distance: the weights cancel


HAND_PRIOR = ColourPrior.from_counts([3.0, 1.0, 0.0], LINE, smoothing_sigma=None)


def test_rebalanced_auc_by_hand():
    # Ground truth at centre 0 (p = 3/4) predicted exactly, and at centre 1 (p = 1/4) predicted 20
    # away (each twice). The fraction within t is a below t = 20 and 1 from there on.
    true_lab = np.array([[[[50.0, 0.0, 0.0], [50.0, 10.0, 0.0]]] * 2], np.float32)
    pred_lab = np.array([[[[50.0, 0.0, 0.0], [50.0, 10.0, 20.0]]] * 2], np.float32)
    area = lambda a, d: a * (d - 1) + (a + 1) / 2 + (150 - d)  # noqa: E731
    result = summarise(metrics.batch_metric_sums_lab(pred_lab, true_lab, prior=HAND_PRIOR))
    assert result["auc_raw"] == pytest.approx(100 * area(0.5, 20) / 150)
    weight_right, weight_wrong = 4 / 3, 4.0
    a = weight_right / (weight_right + weight_wrong)
    assert result["auc_rebalanced"] == pytest.approx(100 * area(a, 20) / 150, rel=1e-6)
    assert np.isnan(result["ssim"])  # smaller than the 11 x 11 window


def test_rgb_errors_by_hand_on_2x2_images():
    true = np.full((2, 2, 2, 3), 0.5, np.float32)
    errors = np.array([[[0, 0, 0], [0.13, 0, 0]], [[0.1, 0.1, 0.1], [0.15, 0, 0]]], np.float32)
    pred = true.copy()
    pred[0] += errors  # pixels: exact; inf 0.13 & l2 0.13 (correct); l2 0.173 (wrong); inf 0.15 (wrong)
    pred[1, 0, 0] += [0.2, 0, 0]  # one error of 0.2 on one channel
    per_image = metrics.per_image_sums(pred, true)
    sq = np.array([0.13**2 + 3 * 0.1**2 + 0.15**2, 0.2**2])
    values = summarise(per_image)
    np.testing.assert_allclose(values["rmse"], np.sqrt(sq / 12), rtol=1e-5)
    np.testing.assert_allclose(values["psnr"], 10 * np.log10(12 / sq), rtol=1e-5)
    np.testing.assert_allclose(values["custom_accuracy"], [0.5, 0.75])
    result = summarise(metrics.batch_metric_sums(pred, true))
    assert result["rmse"] == pytest.approx(np.sqrt(sq.sum() / 24), rel=1e-5)
    assert result["psnr"] == pytest.approx(10 * np.log10(24 / sq.sum()), rel=1e-5)
    assert result["psnr_per_image"] == pytest.approx(np.mean(10 * np.log10(12 / sq)), rel=1e-5)
    assert result["rmse_per_image"] == pytest.approx(np.mean(np.sqrt(sq / 12)), rel=1e-5)
    assert result["custom_accuracy"] == pytest.approx(5 / 8)
    assert "auc_rebalanced" not in result and "out_of_gamut_pixels" not in result  # no prior, RGB input
    for i in range(2):
        assert values["psnr"][i] == pytest.approx(skm.peak_signal_noise_ratio(true[i], pred[i], data_range=1), rel=1e-5)


def test_colourfulness_by_hand():
    # Pixels red, green, blue, white (0-255): rg = (255, -255, 0, 0), yb = (127.5, 127.5, -255, 0);
    # both means are 0, var rg = 2 * 255^2 / 4, var yb = (2 * 127.5^2 + 255^2) / 4.
    rgb = np.array([[[[1, 0, 0], [0, 1, 0]], [[0, 0, 1], [1, 1, 1]]]], np.float32)
    expected = np.sqrt(2 * 255**2 / 4 + (2 * 127.5**2 + 255**2) / 4)
    assert float(metrics.colourfulness(rgb)[0]) == pytest.approx(expected, rel=1e-6)
    # A flat colour has no spread: CF = 0.3 * |mean (rg, yb)|; (200, 100, 50): rg 100, yb 100.
    flat = np.broadcast_to(np.array([200, 100, 50], np.float32) / 255, (1, 3, 3, 3))
    assert float(metrics.colourfulness(flat)[0]) == pytest.approx(0.3 * np.hypot(100, 100), rel=1e-5)


def test_colourfulness_and_delta_cf_against_numpy():
    pred, true = _random_rgb((3, 8, 8, 3), 1) * 0.5, _random_rgb((3, 8, 8, 3), 2)

    def cf(img):
        r, g, b = (img * 255.0).astype(np.float64).transpose(2, 0, 1)
        rg, yb = r - g, 0.5 * (r + g) - b
        return np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())

    cf_pred, cf_true = np.array([cf(x) for x in pred]), np.array([cf(x) for x in true])
    result = summarise(metrics.batch_metric_sums(pred, true))
    assert result["colourfulness"] == pytest.approx(cf_pred.mean(), rel=1e-5)
    assert result["colourfulness_true"] == pytest.approx(cf_true.mean(), rel=1e-5)
    assert result["delta_cf"] == pytest.approx(abs(cf_pred.mean() - cf_true.mean()), rel=1e-4)
    assert result["delta_cf_per_image"] == pytest.approx(np.abs(cf_pred - cf_true).mean(), rel=1e-4)


def _photo_pairs():
    photo = transform.resize(data.astronaut(), (48, 64), anti_aliasing=True).astype(np.float32)
    rng = np.random.default_rng(3)
    noisy = np.clip(photo + rng.normal(0, 0.05, photo.shape), 0, 1).astype(np.float32)
    desaturated = (0.5 * photo + 0.5 * photo.mean(-1, keepdims=True)).astype(np.float32)
    random = _random_rgb(photo.shape, 4)
    return np.stack([photo] * 3), np.stack([noisy, desaturated, random])


def test_ssim_matches_scikit_image():
    true, pred = _photo_pairs()
    got = np.asarray(metrics.ssim_per_image(pred, true))
    for i in range(len(true)):
        expected = skm.structural_similarity(
            pred[i].astype(np.float64), true[i].astype(np.float64), gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False, data_range=1.0, channel_axis=-1,
        )
        assert got[i] == pytest.approx(expected, abs=2e-5)
    with pytest.raises(ValueError, match="11 x 11"):
        metrics.ssim_per_image(true[:, :10], pred[:, :10])


def test_out_of_gamut_count():
    true_lab = np.full((1, 2, 2, 3), [50.0, 0.0, 0.0], np.float32)
    pred_lab = true_lab.copy()
    pred_lab[0, 1, 1] = [50.0, 120.0, 0.0]  # no sRGB colour has a = 120 at L = 50
    assert color.out_of_gamut(np.array([50.0, 120.0, 0.0])).item()
    result = summarise(metrics.batch_metric_sums_lab(pred_lab, true_lab, prior=HAND_PRIOR))
    assert result["out_of_gamut_pixels"] == 1 and result["out_of_gamut_fraction"] == 0.25


def test_accumulator_equals_one_big_batch():
    pred, true = _random_rgb((4, 12, 12, 3), 5), _random_rgb((4, 12, 12, 3), 6)
    prior = ColourPrior.from_counts(np.arange(1.0, 4.0), LINE * 5)
    per_image = metrics.per_image_sums(pred, true, prior=prior)
    whole = summarise({key: np.sum(value, axis=0) for key, value in per_image.items()})
    accumulator = MetricAccumulator()
    accumulator.update(metrics.batch_metric_sums(pred[:1], true[:1], prior=prior))
    accumulator.update_images({key: value[1:] for key, value in per_image.items()})
    result = accumulator.result()
    assert result.keys() == whole.keys()
    for key, value in whole.items():
        assert result[key] == pytest.approx(float(value), rel=1e-5), key
    np.testing.assert_allclose(accumulator.per_image()["psnr"], summarise(per_image)["psnr"][1:], rtol=1e-6)
    with pytest.raises(ValueError, match="no batch"):
        MetricAccumulator().result()
