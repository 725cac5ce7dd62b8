"""Numeric arguments, hints files and multi-host settings at every edge (issue 28, items 7, 9, 10, 14):
one rule set (colorjax.validation) behind the command line, the Python API and saved settings; each
bad value is refused before any work with a one-line error naming the argument (or the file)."""

import json
import math

import numpy as np
import pytest
from flax import nnx
from PIL import Image

from colorjax import colorize_arrays, validation
from colorjax.cli import main
from colorjax.hints import HintError, hints_from_json, load_hints, parse_colour
from colorjax.models import build_model


def test_the_rule_set_refuses_non_finite_fractional_and_out_of_range_numbers():
    assert validation.number(2, "n") == 2 and validation.temperature(0.0) == 0.0
    assert validation.count(3.0, "c") == 3 and isinstance(validation.count(3.0, "c"), int)
    cases = [(validation.temperature, math.nan, "--temperature: expected a finite number, got nan"),
             (validation.temperature, math.inf, "expected a finite number, got inf"),
             (validation.temperature, -0.5, "below the minimum 0"),
             (validation.temperature, "0.3", "expected a number, got '0.3'"),
             (validation.prior_correction, 2.0, "above the maximum 1"),
             (validation.count, 2.5, "expected a whole number, got 2.5"),
             (validation.count, -3, "-3 is below the minimum 1"),
             (validation.count, True, "expected a number, got True"),
             (validation.count, 10**400, "out of range")]
    for check, value, message in cases:
        with pytest.raises(validation.ArgumentError, match=message.replace("(", r"\(")):
            check(value, "--temperature") if check is validation.temperature else check(value, "x")
    with pytest.raises(validation.ArgumentError, match="--ratios: expected a finite number, got nan"):
        validation.split_ratios([math.nan, 0.5, 0.5])
    with pytest.raises(validation.ArgumentError, match="sum to 1"):
        validation.split_ratios([0.5, 0.5, 0.5])


@pytest.fixture()
def photo_folder(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(np.full((24, 32, 3), (150, 90, 60), np.uint8)).save(folder / name)
    return folder


@pytest.mark.parametrize("option, value", [("--temperature", "nan"), ("--temperature", "inf"),
                                           ("--prior-correction", "nan"), ("--size", "0"), ("--batch-size", "-1")])
def test_colorize_refuses_bad_numbers_before_any_work(tmp_path, photo_folder, capsys, option, value):
    out = tmp_path / "out"
    code = main(["colorize", str(photo_folder), "--checkpoint", str(tmp_path / "no_checkpoint"), "--out", str(out),
                 "--no-progress", option, value])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"colorize: {option}:") and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


@pytest.mark.parametrize("option, value", [("--temperature", "inf"), ("--max-images", "-3"), ("--max-images", "0"),
                                           ("--size", "-5"), ("--prior-correction", "-1")])
def test_evaluate_refuses_bad_numbers_before_any_work(tmp_path, capsys, option, value):
    out = tmp_path / "record"
    code = main(["evaluate", "--baseline", "gray", "--data", "embedded", "--split", "test", "--out", str(out),
                 option, value])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"evaluate: {option}:"), err
    assert not (tmp_path / "record.json").exists()


def test_evaluate_api_refuses_a_non_finite_temperature(tmp_path):
    from colorjax.evaluation.commands import evaluate_to_file

    with pytest.raises(validation.ArgumentError, match="temperature: expected a finite number, got nan"):
        evaluate_to_file(baseline="gray", data="embedded", out=tmp_path / "r", temperature=math.nan)
    with pytest.raises(validation.ArgumentError, match="max_images: -3 is below the minimum 1"):
        evaluate_to_file(baseline="gray", data="embedded", out=tmp_path / "r", max_images=-3)


def test_the_evaluation_loop_refuses_a_negative_image_count():
    from colorjax.evaluation.evaluate import evaluate

    batches = [{"rgb": np.zeros((7, 8, 8, 3), np.uint8)}]  # formerly: 4 of the 7 images scored, silently
    with pytest.raises(validation.ArgumentError, match="max_images: -3 is below the minimum 1"):
        evaluate(lambda lab: lab[..., 1:], batches, max_images=-3)


def test_data_build_refuses_non_finite_ratios(tmp_path, photo_folder, capsys):
    data_dir = tmp_path / "data"
    code = main(["data", "build", str(photo_folder), "--data-dir", str(data_dir), "--ratios", "nan", "0.5", "0.5"])
    assert code == 1 and "--ratios: expected a finite number, got nan" in capsys.readouterr().err
    assert not data_dir.exists() or not any(data_dir.rglob("*.array_record*"))


def test_colorize_api_refuses_non_finite_temperature_and_bad_sizes():
    model = nnx.eval_shape(lambda: build_model("eccv16", "classification", width=1 / 16, rngs=nnx.Rngs(0)))
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(validation.ArgumentError, match="temperature: expected a finite number, got nan"):
        colorize_arrays(model, [image], size=32, temperature=math.nan)
    with pytest.raises(validation.ArgumentError, match="batch_size: 0 is below the minimum 1"):
        colorize_arrays(model, [image], size=32, batch_size=0)


@pytest.mark.parametrize("ab", [[1e30, 0], [0, 1e300], [200, 0], [0, -129]])
def test_hint_colours_outside_lab_are_refused_naming_the_point(ab):
    with pytest.raises(HintError, match=r"h.json: point 1: colour: [ab]: .*(above|below)"):
        hints_from_json({"points": [{"x": 1, "y": 1, "ab": ab}]}, "h.json")
    assert parse_colour([127, -127]) == (127.0, -127.0)


def test_malformed_hints_files_get_one_line_errors_naming_the_file(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(HintError, match="deep.json: the hints file nests too deeply"):
        load_hints(deep)
    huge = tmp_path / "huge.json"
    huge.write_text('{"points": [{"x": 1' + "0" * 400 + ', "y": 1, "color": "#ff0000"}]}')
    with pytest.raises(HintError, match=r"huge.json: point 1: x: 1000.* is out of range"):
        load_hints(huge)
    latin = tmp_path / "latin.json"
    latin.write_bytes('{"points": [], "images": {"caf\u00e9.jpg": []}}'.encode("latin-1"))
    with pytest.raises(HintError, match="latin.json: the hints file is not UTF-8 text"):
        load_hints(latin)


def test_hints_for_no_input_file_are_an_error_naming_the_key(tmp_path, photo_folder, capsys):
    hints = tmp_path / "hints.json"
    hints.write_text(json.dumps({"images": {"a.png": [{"x": 1, "y": 1, "color": "#ff0000"}],
                                            "../in1/photo.jpg": [{"x": 1, "y": 1, "color": "#00ff00"}]}}))
    code = main(["colorize", str(photo_folder), "--checkpoint", str(tmp_path / "no_checkpoint"),
                 "--out", str(tmp_path / "out"), "--hints", str(hints), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "hints.json: images '../in1/photo.jpg' match(es) no input file" in err, err
    parsed = hints_from_json({"images": {"a.png": [{"x": 1, "y": 1, "color": "#ff0000"}]}}, "h.json")
    parsed.check_applies_to([photo_folder / "a.png", photo_folder / "b.png"])  # matched by file name: fine
    with pytest.raises(HintError, match="h.json: images 'a.png' match"):
        parsed.check_applies_to([photo_folder / "b.png"])


def test_saved_inference_settings_follow_the_same_rules():
    from colorjax.checkpointing import inference_defaults

    assert inference_defaults({"inference": {"size": 64, "temperature": 0.5}}, "ck")["temperature"] == 0.5
    for block, message in [({"temperature": "warm"}, "temperature: expected a number, got 'warm'"),
                           ({"size": "64"}, "size: expected a number"), ({"prior_correction": math.nan}, "finite"),
                           ("fast", "are not an object")]:
        with pytest.raises(validation.ArgumentError, match=f"ck: .*{message}"):
            inference_defaults({"inference": block}, "ck")


@pytest.mark.slow
def test_a_hand_edited_saved_inference_block_is_named(tmp_path):
    from colorjax.checkpointing import save_model
    from colorjax.inference import Colorizer

    model = build_model("eccv16", "classification", width=1 / 16, rngs=nnx.Rngs(0))
    config = {"backbone": "eccv16", "head": "classification", "width": 1 / 16,
              "inference": {"size": 64, "temperature": "warm"}}
    save_model(tmp_path / "edited", model, config)
    # The saved settings are read where they are used: by the one inference path (colorize, evaluate, the demo).
    with pytest.raises(ValueError, match=r"edited: saved inference.temperature: expected a number, got 'warm'"):
        Colorizer.from_checkpoint(tmp_path / "edited")


@pytest.mark.parametrize("env, message", [
    ({"COLORJAX_NUM_PROCESSES": "abc"}, "COLORJAX_NUM_PROCESSES set but COLORJAX_COORDINATOR, COLORJAX_PROCESS_ID not"),
    ({"COLORJAX_COORDINATOR": "10.0.0.1:1234"}, "COLORJAX_COORDINATOR set but COLORJAX_NUM_PROCESSES"),
    ({"COLORJAX_COORDINATOR": "10.0.0.1", "COLORJAX_NUM_PROCESSES": "2", "COLORJAX_PROCESS_ID": "0"},
     "COLORJAX_COORDINATOR='10.0.0.1': not a coordinator address host:port"),
    ({"COLORJAX_COORDINATOR": "h:99999", "COLORJAX_NUM_PROCESSES": "2", "COLORJAX_PROCESS_ID": "0"},
     "COLORJAX_COORDINATOR='h:99999'.*above the maximum 65535"),
    ({"COLORJAX_COORDINATOR": "h:1234", "COLORJAX_NUM_PROCESSES": "abc", "COLORJAX_PROCESS_ID": "0"},
     "COLORJAX_NUM_PROCESSES='abc': expected a whole number >= 1"),
    ({"COLORJAX_COORDINATOR": "h:1234", "COLORJAX_NUM_PROCESSES": "2", "COLORJAX_PROCESS_ID": "2"},
     "COLORJAX_PROCESS_ID='2': 2 is above the maximum 1"),
])
def test_multi_host_settings_are_checked_together_naming_the_wrong_one(monkeypatch, env, message):
    from colorjax.training import parallel

    for name in parallel.DISTRIBUTED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        parallel.initialize_distributed()


def test_multi_host_settings_are_read_whole():
    from colorjax.training.parallel import distributed_settings

    assert distributed_settings({}) is None
    env = {"COLORJAX_COORDINATOR": "10.0.0.1:1234", "COLORJAX_NUM_PROCESSES": "4", "COLORJAX_PROCESS_ID": "3"}
    assert distributed_settings(env) == {"coordinator_address": "10.0.0.1:1234", "num_processes": 4, "process_id": 3}


def test_a_coordinator_that_does_not_resolve_is_named_not_waited_on(monkeypatch):
    from colorjax.training import parallel

    monkeypatch.setenv("COLORJAX_COORDINATOR", "no-such-host.invalid:1234")
    monkeypatch.setenv("COLORJAX_NUM_PROCESSES", "1")
    monkeypatch.setenv("COLORJAX_PROCESS_ID", "0")
    with pytest.raises(ValueError, match=r"COLORJAX_COORDINATOR='no-such-host.invalid:1234': the host .* does not resolve"):
        parallel.initialize_distributed()


def test_train_reports_a_bad_multi_host_setting_in_one_line(tmp_path, monkeypatch, capsys):
    from conftest import TINY_CONFIG

    monkeypatch.setenv("COLORJAX_NUM_PROCESSES", "abc")  # no coordinator: formerly one process, without a word
    monkeypatch.delenv("COLORJAX_COORDINATOR", raising=False)
    monkeypatch.delenv("COLORJAX_PROCESS_ID", raising=False)
    workdir = tmp_path / "run"
    assert main(["train", "--config", str(TINY_CONFIG), "--workdir", str(workdir)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("colorjax train: COLORJAX_NUM_PROCESSES set but") and len(err.splitlines()) == 1, err
    assert not workdir.exists()
