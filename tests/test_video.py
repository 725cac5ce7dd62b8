"""Video: colorize a clip with its sound (rate, size, frame count, L kept), images and videos in one
call, bad videos refused with one line naming the file, nothing half-written under the final name."""

from __future__ import annotations

import argparse
import json
import os
from fractions import Fraction

import numpy as np
import pytest
import skimage.color
from PIL import Image

from conftest import smooth_photo
from video_clips import moving_frames, read_clip, write_clip
from colorjax.inference import commands, video
from colorjax.inference.temporal import FlowPropagation

MODEL_CONFIG = {"backbone": "eccv16", "head": "classification", "width": 1 / 16}  # as in test_inference


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, save_random_model):
    return save_random_model(tmp_path_factory.mktemp("ckpt"), MODEL_CONFIG)


@pytest.fixture(scope="module")
def model():
    from flax import nnx

    from colorjax.models import build_model

    return build_model(**MODEL_CONFIG, rngs=nnx.Rngs(0))


def _colorize(model, inputs, out, **options):
    """``colorize_media`` at 32 px; returns (summary, {file name: its one-line reason})."""
    reasons = {}
    from colorjax.inference import Colorizer

    colorizer = Colorizer(model, size=32, temperature=0.38, batch_size=4)
    summary = video.colorize_media(colorizer, inputs, out, progress=False,
                                   on_error=lambda path, reason: reasons.__setitem__(path.name, reason), **options)
    assert all("\n" not in reason for reason in reasons.values())
    return summary, reasons


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 32 x 32 clip of 10 frames at 10 frames/s with a second of 440 Hz tone (AAC)."""
    folder = tmp_path_factory.mktemp("clips")
    frames = moving_frames(10)
    return write_clip(folder / "clip.mp4", frames, rate=10, tone_seconds=1.0)


def _run(argv):
    parser = argparse.ArgumentParser()
    commands.add_arguments(parser)
    return commands.run(parser.parse_args(argv))


def _lightness(rgb_uint8):
    return skimage.color.rgb2lab(rgb_uint8)[..., 0]


def _check_colorized_clip(source_path, result_path):
    source, source_rate, source_audio = read_clip(source_path)
    result, rate, audio = read_clip(result_path)
    assert result.shape == source.shape == (10, 32, 32, 3) and rate == source_rate == 10
    assert len(source_audio) > 5 and audio == source_audio  # the sound's packets, byte for byte
    # Only ab comes from the model: the output's L is the source's up to two H.264 encodings.
    assert np.abs(_lightness(result) - _lightness(source)).mean() < 1.5
    assert np.abs(result.astype(int) - result[..., :1]).max() > 5  # colour was added


def test_video_and_image_in_one_call_keep_rate_size_frames_audio_and_lightness(model, clip, tmp_path):
    photo = tmp_path / "photo.png"
    Image.fromarray(smooth_photo(40, 30)).save(photo)
    out = tmp_path / "out"
    summary, reasons = _colorize(model, [clip, photo], out)
    assert not reasons and str(summary) == "2 colorized, 0 failed"
    assert sorted(p.name for p in out.iterdir()) == ["clip.mp4", "photo.png"]  # no partial file left
    _check_colorized_clip(clip, out / "clip.mp4")
    again, _ = _colorize(model, [clip], out)  # an existing output is kept without --overwrite
    assert again.skipped == [out / "clip.mp4"] and not again.written


@pytest.mark.slow
def test_colorize_command_on_a_clip_and_a_photo(checkpoint, clip, tmp_path, capsys):
    photo = tmp_path / "photo.png"
    Image.fromarray(smooth_photo(40, 30)).save(photo)
    out = tmp_path / "out"
    code = _run([str(clip), str(photo), "--checkpoint", str(checkpoint), "--out", str(out), "--size", "32",
                 "--batch-size", "4", "--temporal", "none", "--no-progress"])
    assert code == 0 and "2 colorized, 0 failed" in capsys.readouterr().out
    _check_colorized_clip(clip, out / "clip.mp4")


def test_temporal_flow_cuts_the_flicker_of_random_per_frame_tints():
    """A per-frame colorizer that tints each frame with a random ab offset flickers; carrying ab along
    the flow must remove most of the frame-to-frame change where the content only moves."""
    from colorjax.evaluation.video_metrics import TemporalMetrics

    frames = moving_frames(12, 48, 48, seed=3)
    rng = np.random.default_rng(0)

    def tinted(rgb):  # the truth's colours plus a random tint of chroma 10, by scikit-image's Lab
        lab = skimage.color.rgb2lab(rgb)
        lab[..., 1:] += rng.normal(0, 10, 2)
        return np.round(np.clip(skimage.color.lab2rgb(lab), 0, 1) * 255).astype(np.uint8)

    propagation, metrics = FlowPropagation(), TemporalMetrics()
    for frame in frames:
        per_frame = tinted(frame)
        metrics.update(frame, {"truth": frame, "none": per_frame, "flow": propagation(frame, per_frame)})
    result = metrics.result()
    excess = {name: result[name]["warping_error"] - result["truth"]["warping_error"] for name in ("none", "flow")}
    assert excess["none"] > 0.0005 and excess["flow"] < excess["none"] / 2
    assert propagation.scene_cuts == 0


def test_scene_cut_resets_the_propagation():
    frames = list(moving_frames(4, 40, 40, seed=1)) + list(np.flip(moving_frames(4, 40, 40, seed=7), axis=(1, 2)))
    colored = [np.roll(frame, i, axis=-1) for i, frame in enumerate(frames)]  # a different colouring per frame
    propagation = FlowPropagation()
    outputs = [propagation(frame, out) for frame, out in zip(frames, colored)]
    assert propagation.scene_cuts == 1
    np.testing.assert_array_equal(outputs[4], colored[4])  # the first frame of the new shot: its own colours
    assert np.abs(outputs[5].astype(int) - colored[5]).max() > 10  # and then propagated again


def test_corrupt_video_is_reported_and_the_good_image_written(model, tmp_path):
    bad = tmp_path / "in" / "noise.mp4"
    bad.parent.mkdir()
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    Image.fromarray(smooth_photo(20, 20)).save(tmp_path / "in" / "photo.png")
    out = tmp_path / "out"
    summary, reasons = _colorize(model, [tmp_path / "in"], out)  # a folder: videos are found in it too
    assert reasons["noise.mp4"].startswith("not a readable video")
    assert str(summary) == "1 colorized, 1 failed" and sorted(p.name for p in out.iterdir()) == ["photo.png"]


def test_truncated_videos_are_refused(model, tmp_path):
    data = write_clip(tmp_path / "whole.mkv", moving_frames(10), rate=10).read_bytes()
    (tmp_path / "cut.mkv").write_bytes(data[: len(data) * 17 // 20])  # the header's duration survives
    (tmp_path / "cut.mp4").write_bytes(write_clip(tmp_path / "w.mp4", moving_frames(10)).read_bytes()[:-600])
    out = tmp_path / "out"
    summary, reasons = _colorize(model, [tmp_path / "cut.mkv", tmp_path / "cut.mp4"], out)
    assert reasons["cut.mkv"].startswith("truncated: the header gives a duration of about 10 frames,")
    assert "corrupt or truncated" in reasons["cut.mp4"]
    assert not summary.written and not list(out.iterdir())  # nothing half-written


def test_file_without_video_stream_and_video_without_frames(model, tmp_path):
    import av

    with av.open(str(tmp_path / "sound.mp4"), "w") as container:  # audio only
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with av.open(str(tmp_path / "empty.avi"), "w") as container:  # a video stream, no frame
        stream = container.add_stream("mpeg4", rate=10)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        container.start_encoding()
    summary, reasons = _colorize(model, [tmp_path / "sound.mp4", tmp_path / "empty.avi"], tmp_path / "out")
    assert reasons == {"sound.mp4": "has no video stream", "empty.avi": "has no decodable frame (zero frames)"}
    assert not list((tmp_path / "out").iterdir())


def test_huge_frame_size_is_refused_before_decoding(clip, monkeypatch):
    monkeypatch.setattr(video, "MAX_FRAME_PIXELS", 32 * 32 - 1)
    with pytest.raises(video.BadVideoError, match=r"clip\.mp4: frame size 32 x 32 exceeds the limit"):
        video.probe_video(clip)


def _variable_rate_clip(path, intervals_ms, rate=10):
    """A 32 x 32 H.264 clip whose frames are ``intervals_ms`` apart (a 1 ms time base); ``rate`` is
    the rate its header states."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        times = np.concatenate([[0], np.cumsum(intervals_ms)])
        for rgb, ms in zip(moving_frames(len(times)), times):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = int(ms), Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _avi_with_unknown_codec(path):
    """A valid MPEG-4 AVI whose codec tag (FOURCC, in the stream header and the bitmap header) is
    patched to 'ZZZZ', a codec no FFmpeg knows."""
    data = write_clip(path, moving_frames(5), codec="mpeg4").read_bytes()
    assert data.count(b"FMP4") == 2  # strh fccHandler and strf biCompression
    path.write_bytes(data.replace(b"FMP4", b"ZZZZ"))
    return path


def test_variable_frame_rate_is_refused_and_jitter_of_rounding_is_not(model, clip, tmp_path):
    vfr = _variable_rate_clip(tmp_path / "vfr.mkv", [160, 40] * 6)  # 6.25 then 25 frames/s, by turns
    # 29.97 frames/s in a 1 ms time base: intervals of 33 and 34 ms, a constant rate
    ntsc = _variable_rate_clip(tmp_path / "ntsc.mkv", np.diff(np.round(np.arange(13) * 1001 / 30)).astype(int),
                               rate=Fraction(30000, 1001))
    assert video.probe_video(ntsc).rate == Fraction(30000, 1001)
    out = tmp_path / "out"
    summary, reasons = _colorize(model, [vfr, clip], out)
    assert reasons == {"vfr.mkv": "variable frame rate (frame intervals from 40 to 160 ms); colorjax writes "
                                  "constant-rate video: convert it first (ffmpeg -i IN -fps_mode cfr OUT)"}
    assert str(summary) == "1 colorized, 1 failed" and sorted(p.name for p in out.iterdir()) == ["clip.mp4"]


def test_unsupported_codec_is_named_and_the_run_goes_on(checkpoint, clip, tmp_path, capsys):
    avi = _avi_with_unknown_codec(tmp_path / "odd.avi")
    with pytest.raises(video.BadVideoError, match=r"odd\.avi: video codec 'ZZZZ' is not supported by this FFmpeg build$"):
        video.probe_video(avi)
    out = tmp_path / "out"
    code = _run([str(avi), str(clip), "--checkpoint", str(checkpoint), "--out", str(out), "--size", "32",
                 "--batch-size", "4", "--temporal", "none", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 1 and "1 colorized, 1 failed" in captured.out
    assert captured.err.splitlines() == [f"skipped {avi}: video codec 'ZZZZ' is not supported by this FFmpeg build"]
    assert sorted(p.name for p in out.iterdir()) == ["clip.mp4"]


def test_out_replacing_the_input_is_refused_and_the_input_kept(tmp_path, capsys):
    source = write_clip(tmp_path / "film.mp4", moving_frames(4))
    before = source.read_bytes()
    # refused before the checkpoint is read (none exists here)
    code = _run([str(source), "--checkpoint", str(tmp_path / "no-model"), "--out", str(tmp_path), "--overwrite",
                 "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "film.mp4" in err and "would replace an input" in err
    assert source.read_bytes() == before
    # an output that is a hard link to the input is the input, whatever its path
    (tmp_path / "out").mkdir()
    os.link(source, tmp_path / "out" / "film.mp4")
    code = _run([str(source), "--checkpoint", str(tmp_path / "no-model"), "--out", str(tmp_path / "out"),
                 "--overwrite", "--no-progress"])
    assert code == 2 and "would replace an input" in capsys.readouterr().err
    assert source.read_bytes() == before


def test_a_run_stopped_midway_leaves_the_previous_output_and_no_partial_file(clip, tmp_path):
    target = tmp_path / "clip.mp4"
    target.write_bytes(b"an earlier result")
    calls = []

    def colorize_then_stop(frames):
        calls.append(len(frames))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return list(frames)

    with pytest.raises(KeyboardInterrupt):
        video.colorize_video(colorize_then_stop, clip, target, batch_size=4, progress=False)
    assert target.read_bytes() == b"an earlier result" and sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


@pytest.mark.slow
def test_evaluate_on_a_colour_clip_reports_truth_gray_and_both_modes(checkpoint, clip, tmp_path):
    from colorjax.evaluation import commands as evaluation_commands

    parser = argparse.ArgumentParser()
    evaluation_commands.add_arguments(parser)
    out = tmp_path / "record"
    code = evaluation_commands.run(parser.parse_args(
        ["--checkpoint", str(checkpoint), "--data", str(clip), "--out", str(out), "--model-size", "32", "--batch-size", "4"]))
    assert code == 0
    record = json.loads(out.with_suffix(".json").read_text())
    rows = record["rows"]
    assert set(rows) == {"truth", "gray", "none", "flow"} and record["frames"] == 10
    assert rows["truth"]["auc_raw"] == pytest.approx(100.0) and rows["gray"]["excess_warping_error"] == 0.0
    assert rows["gray"]["colourfulness"] < 0.5 < 10 < rows["truth"]["colourfulness"]
    assert rows["none"]["excess_cdc"] == pytest.approx(rows["none"]["cdc"] - rows["gray"]["cdc"])
    # one shot: no pair crosses a cut, so the within-shot mean is the all-pairs mean
    assert rows["none"]["cut_pairs"] == 0
    assert rows["none"]["warping_error_within_shots"] == pytest.approx(rows["none"]["warping_error"])


def test_audio_that_mp4_cannot_hold_is_re_encoded_to_aac(tmp_path):
    """PCM sound (an AVI's) cannot go into MP4 as it is: it is re-encoded to AAC, every sample kept
    (AAC adds its priming and the padding of the last 1024-sample frame)."""
    import av
    from fractions import Fraction

    rate, seconds = 16000, 1.0
    samples = int(rate * seconds)
    wave = (3000 * np.sin(2 * np.pi * 440 * np.arange(samples) / rate)).astype(np.int16)
    with av.open(str(tmp_path / "pcm.avi"), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        sound = container.add_stream("pcm_s16le", rate=rate)
        sound.layout = "mono"
        for i, rgb in enumerate(moving_frames(10)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        for start in range(0, samples, 1024):
            piece = av.AudioFrame.from_ndarray(wave[None, start : start + 1024], format="s16", layout="mono")
            piece.sample_rate, piece.pts, piece.time_base = rate, start, Fraction(1, rate)
            container.mux(sound.encode(piece))
        container.mux(sound.encode(None))
    result = video.colorize_video(lambda frames: list(frames), tmp_path / "pcm.avi", tmp_path / "out.mp4", progress=False)
    assert result.audio == "re-encoded to AAC" and result.frames == 10
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert container.streams.audio[0].codec_context.name == "aac"
        decoded = np.concatenate([f.to_ndarray()[0] for f in container.decode(audio=0)])
    assert samples <= len(decoded) <= samples + 2 * 1024
    spectrum = np.abs(np.fft.rfft(decoded[1024 : 1024 + 8000]))
    assert np.argmax(spectrum) * rate / 8000 == pytest.approx(440, abs=4)  # the tone survives


def _asgi_post(app, path: str, query: str, body: bytes) -> tuple[int, dict, bytes]:
    """One POST through the ASGI app itself (no server, no HTTP client)."""
    import asyncio

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
             "headers": [(b"content-type", b"application/octet-stream"), (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    sent, pending = [], [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        return pending.pop() if pending else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_demo_colorizes_a_short_video_and_refuses_a_long_one(model, clip, monkeypatch):
    from colorjax.demo import video as demo_video
    from colorjax.demo.app import make_app
    from colorjax.demo.engine import DemoEngine, ModelInfo

    info = ModelInfo(name="random", checkpoint="-", step=0, backbone="eccv16", width=1 / 16, head="classification",
                     bins=313, training_data="-", size=32, takes_hints=False)
    from colorjax.inference import Colorizer

    app = make_app(DemoEngine(Colorizer(model, size=32, batch_size=1), info))
    status, headers, body = _asgi_post(app, "/api/colorize_video", "name=clip.mp4&temperature=0.38", clip.read_bytes())
    assert status == 200 and headers["content-type"] == "video/mp4" and headers["x-frames"] == "10"
    result = clip.parent / "demo_result.mp4"
    result.write_bytes(body)
    _check_colorized_clip(clip, result)

    monkeypatch.setattr(demo_video, "MAX_VIDEO_FRAMES", 9)
    status, _, body = _asgi_post(app, "/api/colorize_video", "name=clip.mp4", clip.read_bytes())
    assert status == 400 and json.loads(body)["error"].startswith("clip.mp4: 10 frames; this demo takes videos of at most 9")
    status, _, body = _asgi_post(app, "/api/colorize_video", "name=notes.mp4", b"not a video")
    assert status == 400 and json.loads(body)["error"].startswith("notes.mp4: not a readable video")
