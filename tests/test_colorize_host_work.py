"""colorize's host side: the numpy resizes equal jax.image.resize, photos of new sizes compile
nothing, and the reader / device / writer pipeline keeps every item and reports bad inputs."""

import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from PIL import Image

from colorjax.inference import Colorizer, colorize_files
from colorjax.inference.host_work import enlarge_ab, pipelined, shrink_lightness


@pytest.mark.parametrize("shape", [(375, 500), (61, 47), (64, 64)])
def test_shrink_lightness_equals_jax_antialiased_linear_resize(shape):
    L = np.random.default_rng(0).uniform(0, 100, (*shape, 1)).astype(np.float32)
    reference = np.asarray(jax.image.resize(jnp.asarray(L), (32, 32, 1), method="linear", antialias=True))
    np.testing.assert_allclose(shrink_lightness(L, 32), reference, atol=1e-3)


@pytest.mark.parametrize("shape", [(375, 500), (17, 90)])
def test_enlarge_ab_equals_jax_bilinear_resize(shape):
    ab = np.random.default_rng(1).uniform(-80, 80, (16, 16, 2)).astype(np.float32)
    reference = np.asarray(jax.image.resize(jnp.asarray(ab), (*shape, 2), method="bilinear"))
    np.testing.assert_allclose(enlarge_ab(ab, *shape), reference, atol=2e-3)


def test_pipelined_keeps_every_item_reports_load_errors_and_runs_io_in_threads():
    device_threads, finish_threads = set(), set()

    def load(i):
        if i == 3:
            raise OSError("item 3 is unreadable")
        return i * 10

    def run_batch(values):
        device_threads.add(threading.current_thread().name)
        return [v + 1 for v in values]

    def finish(i, loaded, output):
        finish_threads.add(threading.current_thread().name)
        return (i, loaded, output)

    results = list(pipelined(list(range(10)), load, run_batch, finish, batch_size=4, threads=2))
    assert sorted(r[0] for r in results) == list(range(10))
    by_item = {item: (value, error) for item, value, error in results}
    assert isinstance(by_item[3][1], OSError) and by_item[3][0] is None
    assert all(by_item[i] == ((i, 10 * i, 10 * i + 1), None) for i in range(10) if i != 3)
    assert device_threads == {threading.main_thread().name}
    assert finish_threads and all(name.startswith("colorize-write") for name in finish_threads)

    def broken_finish(i, loaded, output):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        list(pipelined(list(range(4)), load, run_batch, broken_finish, batch_size=2))


def test_photos_of_new_sizes_compile_nothing(tmp_path):
    """After one warm-up photo, a folder of photos of five other sizes compiles no XLA program
    (the old path compiled the resizes afresh for every new size)."""
    from colorjax.models import build_model

    model = build_model("eccv16", "classification", width=1 / 32, rngs=nnx.Rngs(0))
    rng = np.random.default_rng(0)
    warm, folder = tmp_path / "warm", tmp_path / "mixed"
    warm.mkdir(), folder.mkdir()
    Image.fromarray(rng.integers(0, 256, (40, 30, 3), np.uint8)).save(warm / "first.png")
    for i, (h, w) in enumerate([(37, 52), (90, 61), (23, 23), (64, 100), (51, 33)]):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), np.uint8)).save(folder / f"{i}.png")
    colorize_files(Colorizer(model, size=32, batch_size=2), [warm], tmp_path / "out_warm", progress=False)
    compiles = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, seconds, **kw: compiles.append(event) if event == "/jax/core/compile/backend_compile_duration" else None)
    summary = colorize_files(Colorizer(model, size=32, batch_size=2), [folder], tmp_path / "out", progress=False)
    assert len(summary.written) == 5 and not summary.failed
    assert compiles == []
    for i, (h, w) in enumerate([(37, 52), (90, 61), (23, 23), (64, 100), (51, 33)]):
        assert np.asarray(Image.open(tmp_path / "out" / f"{i}.png")).shape == (h, w, 3)


def test_linear_rgb_gamut_test_equals_the_srgb_one():
    from colorjax import color
    from colorjax.inference.pixels import _inside_gamut

    rng = np.random.default_rng(3)
    lab = np.stack([rng.uniform(0, 100, 200_000), rng.uniform(-110, 110, 200_000), rng.uniform(-110, 110, 200_000)], -1)
    lab = jnp.asarray(lab, jnp.float32)
    fast, reference = np.asarray(_inside_gamut(lab)), ~np.asarray(color.out_of_gamut(lab))
    assert 0.05 < reference.mean() < 0.95  # both kinds of colour are in the sample
    assert (fast != reference).mean() < 1e-4  # float32 rounding at the boundary only
