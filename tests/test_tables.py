"""Table writing: records in, Markdown with ours beside the paper's numbers out."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np

from colorjax.evaluation import paper_numbers, tables
from colorjax.grids import image_grid
from colorjax.evaluation.report import format_value, read_record, report_paths, write_report


def _record(metrics: dict) -> dict:
    return {"data": "embedded", "split": "test", "size": 64, "temperature": 0.38, "checkpoint": None,
            "baseline": "gray", "prior_source": "file prior.npz", "metrics": {**metrics, "num_images": 2}}


def _table_row(markdown: str, label: str) -> list[str]:
    line = next(line for line in markdown.splitlines() if line.startswith(f"| {label} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_zhang_table_puts_ours_beside_the_paper(tmp_path):
    write_report(tmp_path / "gray", _record({"auc_raw": 91.23456, "auc_rebalanced": 55.5, "psnr": 23.0,
                                              "colourfulness": 0.0}), [])
    write_report(tmp_path / "classification_rebalanced", _record({"auc_raw": 85.0, "auc_rebalanced": 60.0}), [])
    records = tables.load_records(tables.ZHANG, tmp_path)
    assert set(records) == {"gray", "classification_rebalanced"}
    markdown = tables.render_table(tables.ZHANG, records)
    # columns: method, auc raw ours, paper, auc rebal ours, paper, psnr ours, paper, cf ours, paper, images
    assert _table_row(markdown, "Gray (ab = 0)") == ["Gray (ab = 0)", "91.23", "89.1", "55.5", "58", "23", "-",
                                                      "0", "-", "2"]
    full = _table_row(markdown, "Classification, rebalanced (full)")
    assert full[1:5] == ["85", "89.5", "60", "67.3"] and full[5:9] == ["-", "22.64", "-", "31.6"]
    empty = _table_row(markdown, "L2 regression")
    assert empty[1] == "-" and empty[2] == "91.2"
    assert "No record for: random, lightness, regression_l2, classification." in markdown


def test_comparison_paper_psnr_is_the_one_rmse_implies():
    unet = tables.COMPARISON.paper["unet"]
    assert unet["psnr_from_rmse"] == round(-20 * math.log10(0.206), 2) == 13.72
    assert paper_numbers.psnr_from_rmse(0.1) == 20.0
    markdown = tables.render_table(tables.COMPARISON, {})
    assert "-150.4" in markdown and _table_row(markdown, "Pix2Pix")[6] == "13.31"


def test_activation_table_has_every_activation_with_and_without_batchnorm_and_the_baselines(tmp_path):
    names = [name for name, _ in tables.RRELU.rows]
    assert len(names) == 12 and names[:2] == ["gray", "lightness"]
    from experiments.run_table import ROWS

    assert list(ROWS["rrelu"]) == names  # run_table trains and scores exactly the table's rows
    write_report(tmp_path / "patchnet_elu_nobn", _record({"auc_raw": 70.0}), [])
    markdown = tables.render_table(tables.RRELU, tables.load_records(tables.RRELU, tmp_path))
    assert _table_row(markdown, "elu, without BatchNorm")[1] == "70"


def test_table_command_writes_markdown_and_refuses_an_empty_folder(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    tables.add_arguments(parser)
    out = tmp_path / "zhang.md"
    assert tables.run(parser.parse_args(["zhang", "--records", str(tmp_path), "--out", str(out)])) == 2
    write_report(tmp_path / "random", _record({"auc_raw": 80.0}), [])
    assert tables.run(parser.parse_args(["zhang", "--records", str(tmp_path), "--out", str(out)])) == 0
    assert _table_row(out.read_text(), "Random (colours of another image)")[1:3] == ["80", "84.2"]


def test_report_round_trip_and_grid(tmp_path):
    rows = [[np.full((4, 5, 3), v, np.uint8) for v in (10, 20, 30)] for _ in range(2)]
    paths = write_report(tmp_path / "sub" / "eval.json", _record({"psnr": 12.5}), rows)
    assert paths["json"].name == "eval.json" and paths["grid"].name == "eval_grid.png"
    assert read_record(tmp_path / "sub" / "eval")["metrics"]["psnr"] == 12.5
    assert json.loads(paths["json"].read_text())["baseline"] == "gray"
    assert "| psnr | 12.5 |" in paths["md"].read_text()
    grid = image_grid(rows, pad=1)
    assert grid.shape == (2 * 5 + 1, 3 * 6 + 1, 3)
    assert grid[1, 1 + 6, 0] == 20 and grid[0, 0, 0] == 255
    assert report_paths("x/y")["md"].name == "y.md"
    assert format_value(None) == "-" and format_value(3) == "3" and format_value(0.123456) == "0.1235"


def test_temperature_sweep_grid_matches_a_numpy_annealed_mean():
    import jax
    import skimage.color
    from flax import nnx

    from colorjax.data.embedded import embedded_split
    from colorjax.evaluation.temperature_sweep import labelled_grid, sweep_rows
    from colorjax.models import build_model

    model = build_model("eccv16", "classification", width=1 / 16, rngs=nnx.Rngs(0))
    model.eval()
    rgb = np.stack([np.asarray(jax.image.resize(im, (32, 32, 3), "linear")).astype(np.uint8)
                    for _, im in embedded_split("test")])
    from colorjax.inference import Colorizer

    rows, metrics = sweep_rows(Colorizer(model, size=32), rgb)
    assert len(rows) == 2 and all(len(r) == 2 + len(paper_numbers.SWEEP_TEMPERATURES) for r in rows)
    assert list(metrics) == list(paper_numbers.SWEEP_TEMPERATURES)
    np.testing.assert_array_equal(rows[0][-1], rgb[0])  # last column: the truth
    # T = 1 is the plain mean of the bins under softmax(logits): recompute it with numpy
    lab = skimage.color.rgb2lab(rgb / 255.0)
    logits = np.asarray(model(lab[..., :1].astype(np.float32)), np.float64)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    ab = np.asarray(jax.image.resize(probs @ np.asarray(model.head.centres[...], np.float64), (2, 32, 32, 2), "bilinear"))
    expected = skimage.color.lab2rgb(np.concatenate([lab[..., :1], ab], -1)) * 255
    column = 1 + list(paper_numbers.SWEEP_TEMPERATURES).index(1.0)
    assert np.abs(rows[0][column].astype(float) - expected[0]).max() <= 1.5
    grid = labelled_grid(rows, ["x"] * len(rows[0]))
    assert grid.shape == (14 + 2 * 34 + 2, len(rows[0]) * 34 + 2, 3)


def _metrics(raw, reb, cf):
    return {"auc_raw": raw, "auc_rebalanced": reb, "colourfulness": cf}


def test_decoding_choice_needs_every_validation_set_within_the_bar():
    from experiments.choose_temperature import choose

    baselines = {"a": _metrics(89.0, 60.0, 14.0), "b": _metrics(90.0, 66.0, 14.0)}
    rows = {
        (0.5, 1.0): {"a": _metrics(88.9, 64.0, 26.0), "b": _metrics(89.9, 69.5, 25.5)},  # leads 4.0 / 3.5
        (0.25, 0.38): {"a": _metrics(88.9, 66.0, 30.0), "b": _metrics(89.5, 71.0, 31.0)},  # b 0.5 below: out
        (0.75, 1.0): {"a": _metrics(89.0, 63.0, 25.0), "b": _metrics(90.0, 70.0, 24.0)},  # b too dull
    }
    assert choose(rows, baselines, raw_margin=0.25, min_colourfulness=25)[0] == (0.5, 1.0)
    # with a wider margin the vivid pair is in, and its smallest lead (5.0 on b, 6.0 on a) is the best
    assert choose(rows, baselines, raw_margin=0.5, min_colourfulness=25)[0] == (0.25, 0.38)
    # no colourfulness floor: the most colourful pair within the margin, judged by its duller set
    assert choose(rows, baselines, raw_margin=0.25, min_colourfulness=0)[0] == (0.5, 1.0)
    # nothing within the margin: the smallest raw deficit, whatever its colour
    assert choose(rows, baselines, raw_margin=-0.05, min_colourfulness=25)[0] == (0.75, 1.0)


def test_tiny_imagenet_scale_trains_on_tiny_imagenet_and_scores_its_val_photos():
    from experiments.configs.scales import EVAL_SPLIT, TINY_IMAGENET, TINY_IMAGENET_STEPS
    from experiments.run_table import load_row_config

    config = load_row_config("zhang_classification_rebalanced.py", "tiny_imagenet")
    assert config.data.spec == TINY_IMAGENET and config.train.num_steps == TINY_IMAGENET_STEPS
    assert config.data.crop_size == 64 and config.model.width == 0.25 and config.prior.rebalance
    assert EVAL_SPLIT["tiny_imagenet"] == "validation" and EVAL_SPLIT["tiny"] == "test"
    patch = load_row_config("rrelu_patchnet.py", "tiny_imagenet", activation="elu", batch_norm=False)
    assert patch.data.crop_size == 32 and patch.model.activation == "elu"
