"""Colorize video files: any container and codec FFmpeg reads in, H.264 yuv420p MP4 out, sound kept.

The whole path, one batch of frames at a time (PyAV: FFmpeg's libraries inside its wheel):

    decode ``batch_size`` frames -> uint8 RGB -> :func:`frame_colorizer` (the photo path: full-resolution
    L kept, only ab from the model) -> optionally :class:`colorjax.inference.temporal.FlowPropagation`
    (ab carried along optical flow from the previous output) -> encode -> mux, the source's audio
    packets muxed in between, unchanged.

Memory is bounded by the batch, not by the film: at most ``batch_size`` decoded frames, their
colorized copies and the temporal step's state (the previous frame's gray and ab) are held, about
``(2 * batch_size + 3) * H * W * 3`` bytes plus the encoder's few frames of look-ahead; the encoded
packets go to the file as they come. The output is written to a temporary file beside the target and
renamed onto it at the end: a run stopped midway leaves no half-written file under the final name.

Output: the source's frame rate (its average rate: frames are numbered ``0, 1, ...`` at that rate),
size and frame count. H.264 4:2:0 needs even sides, so an odd width or height is padded by one
repeated edge column or row (the only change of size; said in the summary's record).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

# Containers recognised by suffix when a folder is listed or a file named (FFmpeg reads many more;
# a file named explicitly with another suffix is tried as an image).
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ogv", ".flv", ".wmv", ".ts")
OUTPUT_SUFFIX = ".mp4"
VIDEO_CODEC = "libx264"
PIXEL_FORMAT = "yuv420p"
# x264's constant rate factor: 18 is "visually lossless" in x264's documentation; preset as its default.
CRF = "18"
# A frame larger than 8K UHD (7680 x 4320) is refused before any decoding: at 8 frames a batch that is
# already 3 GB of RGB for the frames and their colorized copies.
MAX_FRAME_PIXELS = 7680 * 4320
# Variable frame rate: the presentation times of the first VFR_PROBE_PACKETS video packets (demuxed,
# not decoded; sorted, since B-frames come out of order) must be evenly spaced: the longest interval
# between consecutive frames may exceed the shortest by at most half the median interval (so the
# rounding of times to the container's time base and small jitter pass; a dropped frame, a phone
# halving its rate in the dark or a screen recording's pauses do not). The last MAX_REORDER
# times of a window cut short are left out: a frame shown before them may not have been demuxed yet.
VFR_PROBE_PACKETS = 300
MAX_REORDER = 16
VFR_TOLERANCE = 0.5
# A stream whose header gives a duration but no frame count is truncated when it decodes fewer frames
# than duration x rate less this slack (durations are rounded to the container's time base).
def duration_slack(frames: int) -> int:
    return max(2, frames // 50)


# Audio codecs an MP4 file can hold as they are; any other is re-encoded to AAC (said in the record).
MP4_AUDIO_CODECS = ("aac", "mp3", "alac", "opus", "flac", "ac3", "eac3")


class BadVideoError(ValueError):
    """A video that cannot be colorized: unreadable, an unknown codec, no video stream, no frames,
    too large, a variable frame rate."""

    def __init__(self, path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = Path(path), problem


def is_video(path: str | os.PathLike) -> bool:
    """Whether ``path`` is taken as a video (by its suffix)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """What the header of a video says (``frames`` is None when the container does not count them)."""

    path: Path
    width: int
    height: int
    rate: Fraction
    frames: int | None
    codec: str
    audio_codec: str | None
    frames_counted: bool = True  # False: ``frames`` is the stream's duration times its rate (may be off by one or two)


def _open(path: Path, capture_log: bool = False):
    """``av.open(path)``; with ``capture_log``, a context manager giving (container, FFmpeg's warnings
    while opening it) instead."""
    import av

    if capture_log:
        return _open_capturing_log(path)
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as error:
        raise BadVideoError(path, f"not a readable video ({_reason(error)})") from None


@contextlib.contextmanager
def _open_capturing_log(path: Path):
    import av.logging

    level, skip_repeated = av.logging.get_level(), av.logging.get_skip_repeated()
    av.logging.set_level(av.logging.WARNING)
    av.logging.set_skip_repeated(False)  # the same file opened twice warns twice
    try:
        with av.logging.Capture() as log:
            container = _open(path)
    finally:
        av.logging.set_level(level)
        av.logging.set_skip_repeated(skip_repeated)
    with container:
        yield container, log


def _reason(error) -> str:
    return getattr(error, "strerror", None) or str(error)


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """The header of ``path``, checked: a :class:`BadVideoError` for an unreadable file, a video codec
    this FFmpeg cannot decode, no video stream, no frame rate, zero frames (per the header), a frame
    over :data:`MAX_FRAME_PIXELS` or a variable frame rate (:func:`_check_constant_rate`)."""
    path = Path(path)
    with _open(path, capture_log=True) as (container, log):
        codec = _unknown_video_codec(log) if container.streams.video else None
        if codec is not None and container.streams.video[0].codec_context is None:
            raise BadVideoError(path, f"video codec {codec!r} is not supported by this FFmpeg build")
        if not container.streams or any(s.codec_context is None for s in container.streams):
            raise BadVideoError(path, "not a readable video (a stream without a codec: corrupt or truncated header)")
        if not container.streams.video:
            raise BadVideoError(path, "has no video stream")
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        if not width or not height:
            raise BadVideoError(path, "the video stream has no frame size (corrupt header)")
        if width * height > MAX_FRAME_PIXELS:
            raise BadVideoError(path, f"frame size {width} x {height} exceeds the limit of {MAX_FRAME_PIXELS} pixels (8K UHD)")
        rate = stream.average_rate or stream.guessed_rate
        if not rate or rate <= 0:
            raise BadVideoError(path, "the video stream has no frame rate")
        frames, counted = stream.frames or None, True
        if frames is None:
            seconds = _stream_seconds(stream)
            frames, counted = (round(seconds * rate) or None, False) if seconds else (None, False)
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        _check_constant_rate(path, container, stream)
        return VideoInfo(path, width, height, Fraction(rate), frames, stream.codec_context.name, audio, counted)


def _unknown_video_codec(log) -> str | None:
    """The video codec FFmpeg named, else the tag (FOURCC) it read, in its "could not find codec
    parameters" warning; None without one (a stream without a codec is then a corrupt header)."""
    for _level, _name, message in log:
        found = re.search(r"codec parameters .*Video: (\S+) \(([^)/]+?) / 0x[0-9a-fA-F]+\)", message)
        if found:
            return found.group(1) if found.group(1) != "none" else found.group(2).strip()
    return None


def _check_constant_rate(path: Path, container, stream) -> None:
    """A :class:`BadVideoError` when the first frames' presentation times are not evenly spaced
    (:data:`VFR_TOLERANCE`); reads at most :data:`VFR_PROBE_PACKETS` packets, decodes none. Demuxing
    errors end the look (the decoder reports them)."""
    import av

    times, complete = [], True
    try:
        for packet in container.demux(stream):
            if packet.pts is not None:
                times.append(packet.pts)
            if len(times) == VFR_PROBE_PACKETS:
                complete = False
                break
    except av.error.FFmpegError:
        pass
    times = sorted(times)[: None if complete else -MAX_REORDER]
    if len(times) < 3:
        return
    intervals = np.diff(times)
    shortest, longest, median = intervals.min(), intervals.max(), np.median(intervals)
    if longest - shortest > max(2, VFR_TOLERANCE * median):
        ms = float(stream.time_base) * 1000
        raise BadVideoError(path, f"variable frame rate (frame intervals from {shortest * ms:.0f} to {longest * ms:.0f} "
                                  f"ms); colorjax writes constant-rate video: convert it first "
                                  f"(ffmpeg -i IN -fps_mode cfr OUT)")


def _stream_seconds(stream) -> float | None:
    """The video stream's own duration in seconds (its header field, else Matroska's DURATION tag)."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    tag = stream.metadata.get("DURATION") or stream.metadata.get("duration")
    try:
        hours, minutes, seconds = tag.split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except (AttributeError, ValueError):
        return None


def read_frames(info: VideoInfo, batch_size: int) -> Iterator[list[np.ndarray]]:
    """The frames of the video as uint8 RGB [H, W, 3], ``batch_size`` at a time.

    A decoding error, no frame at all, or fewer frames than the header counts (a truncated file;
    when the header gives only a duration, fewer than its frames less :func:`duration_slack`)
    raise :class:`BadVideoError`.
    """
    import av

    decoded = 0
    with _open(info.path) as container:
        batch: list[np.ndarray] = []
        try:
            for frame in container.decode(video=0):
                batch.append(frame.to_ndarray(format="rgb24"))
                decoded += 1
                if len(batch) == batch_size:
                    yield batch
                    batch = []
        except av.error.FFmpegError as error:
            raise BadVideoError(info.path, f"corrupt video data after {decoded} frames ({_reason(error)})") from None
        if batch:
            yield batch
    if decoded == 0:
        raise BadVideoError(info.path, "has no decodable frame (zero frames)")
    if info.frames is not None and decoded < info.frames - (0 if info.frames_counted else duration_slack(info.frames)):
        says = "counts" if info.frames_counted else "gives a duration of about"
        raise BadVideoError(info.path, f"truncated: the header {says} {info.frames} frames, {decoded} could be decoded")


class VideoWriter:
    """H.264 yuv420p MP4 at ``info``'s rate and size, the source's audio muxed in as it goes.

    Frames are written to ``<target>.partial.mp4`` beside the target; :meth:`close` renames it onto
    the target, :meth:`abort` deletes it. Audio packets are copied unchanged (their codec is one MP4
    holds, :data:`MP4_AUDIO_CODECS`), else decoded and re-encoded to AAC; they are read from a second
    handle on the source and interleaved by time with the video, so neither stream is buffered whole.
    """

    def __init__(self, info: VideoInfo, target: Path):
        import av

        self.info, self.target = info, Path(target)
        self.partial = self.target.with_name(self.target.name + ".partial" + OUTPUT_SUFFIX)
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.container = av.open(str(self.partial), mode="w", format="mp4")
        self.width, self.height = info.width + info.width % 2, info.height + info.height % 2
        self.stream = self.container.add_stream(VIDEO_CODEC, rate=info.rate, options={"crf": CRF})
        self.stream.width, self.stream.height, self.stream.pix_fmt = self.width, self.height, PIXEL_FORMAT
        self.frames = 0
        self.audio_copied: bool | None = None
        self._audio_source = self._audio_packets = self._audio_out = self._resampler = None
        self._pending = None  # the next audio packet (or decoded frame), not yet due
        if info.audio_codec is not None:
            self._open_audio()

    def _open_audio(self) -> None:
        import av

        self._audio_source = _open(self.info.path)
        source = self._audio_source.streams.audio[0]
        self.audio_copied = self.info.audio_codec in MP4_AUDIO_CODECS
        if self.audio_copied:
            self._audio_out = self.container.add_stream_from_template(source)
            self._audio_packets = (p for p in self._audio_source.demux(source) if p.dts is not None)
        else:
            rate = source.codec_context.sample_rate or 48000
            channels = len(source.codec_context.layout.channels) or 2
            layout = {1: "mono", 2: "stereo"}.get(channels) or av.AudioLayout(channels).name
            self._audio_out = self.container.add_stream("aac", rate=rate)
            self._audio_out.layout = layout
            # AAC takes frames of 1024 samples (its codec's frame size)
            self._resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate, frame_size=1024)
            self._audio_packets = (p for p in self._audio_source.demux(source))

    def write(self, frames: Sequence[np.ndarray]) -> None:
        import av

        for rgb in frames:
            if rgb.shape[:2] != (self.height, self.width):
                rgb = np.pad(rgb, ((0, self.height - rgb.shape[0]), (0, self.width - rgb.shape[1]), (0, 0)), mode="edge")
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = self.frames
            self.frames += 1
            self._mux_audio_until(self.frames / self.info.rate)
            self.container.mux(self.stream.encode(frame))

    def _mux_audio_until(self, seconds) -> None:
        """Mux the source's audio packets that start before ``seconds`` (None: all that remain)."""
        if self._audio_packets is None:
            return
        while True:
            packet = self._pending if self._pending is not None else next(self._audio_packets, None)
            self._pending = None
            if packet is None:
                self._audio_packets = None
                self._flush_audio_encoder()
                return
            start = packet.pts if packet.pts is not None else packet.dts
            if seconds is not None and start is not None and start * packet.time_base >= seconds:
                self._pending = packet
                return
            if self.audio_copied:
                packet.stream = self._audio_out
                self.container.mux(packet)
            else:
                for decoded in packet.decode():
                    self._encode_audio(self._resampler.resample(decoded))

    def _flush_audio_encoder(self) -> None:
        if self.audio_copied is False:
            self._encode_audio(self._resampler.resample(None))
            self.container.mux(self._audio_out.encode(None))

    def _encode_audio(self, frames) -> None:
        for frame in frames:
            frame.pts = None  # the encoder numbers the samples it is given, in order
            self.container.mux(self._audio_out.encode(frame))

    def close(self) -> Path:
        """Flush the encoder and the remaining audio, then rename the file onto the target."""
        self._mux_audio_until(None)
        self.container.mux(self.stream.encode(None))
        self.container.close()
        self._close_source()
        os.replace(self.partial, self.target)
        return self.target

    def abort(self) -> None:
        """Drop the partial file (the target, if it existed, is untouched)."""
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - the file is deleted either way
            pass
        self._close_source()
        self.partial.unlink(missing_ok=True)

    def _close_source(self) -> None:
        if self._audio_source is not None:
            self._audio_source.close()
            self._audio_source = None


# --------------------------------------------------------------------------------------------
# The one place video meets the model.


FrameColorizer = Callable[[Sequence[np.ndarray]], list[np.ndarray]]


def frame_colorizer(colorizer, temperature: float | None = None) -> FrameColorizer:
    """A function from a batch of full-resolution uint8 RGB frames to their colorized uint8 RGB
    frames: :meth:`colorjax.inference.Colorizer.colorize_frames`, the one inference path (L at full
    resolution, only ab from the model; at ``temperature``, else the colorizer's). Every frame of
    every video goes through this one function."""
    return lambda frames: list(colorizer.colorize_frames(np.stack(list(frames)), temperature))


@dataclasses.dataclass
class VideoResult:
    """What colorizing one video did."""

    target: Path
    frames: int
    seconds: float
    audio: str  # "copied", "re-encoded to AAC" or "none"
    scene_cuts: int = 0


TEMPORAL_MODES = ("none", "flow")


def colorize_video(
    colorize: FrameColorizer,
    source: str | os.PathLike,
    target: str | os.PathLike,
    *,
    batch_size: int = 8,
    temporal: str = "flow",
    progress: bool = True,
) -> VideoResult:
    """Colorize ``source`` into the MP4 ``target`` through ``colorize`` (:func:`frame_colorizer`).

    ``temporal``: ``"none"`` (each frame on its own) or ``"flow"``
    (:class:`colorjax.inference.temporal.FlowPropagation`). A bad video raises
    :class:`BadVideoError`; nothing is left under ``target`` unless the whole video was written.
    """
    from tqdm.auto import tqdm

    from colorjax.inference.temporal import FlowPropagation

    if temporal not in TEMPORAL_MODES:
        raise ValueError(f"temporal mode {temporal!r}: expected one of {TEMPORAL_MODES}")
    info = probe_video(source)
    propagation = FlowPropagation() if temporal == "flow" else None
    start = time.perf_counter()
    writer = VideoWriter(info, Path(target))
    bar = tqdm(total=info.frames, unit="frame", desc=Path(source).name, disable=not progress)
    try:
        for frames in read_frames(info, batch_size):
            colored = colorize(frames)
            if propagation is not None:
                colored = [propagation(frame, out) for frame, out in zip(frames, colored)]
            writer.write(colored)
            bar.update(len(frames))
        audio = {None: "none", True: "copied", False: "re-encoded to AAC"}[writer.audio_copied]
        written = writer.close()
    except BaseException:
        writer.abort()
        raise
    finally:
        bar.close()
    return VideoResult(written, writer.frames, time.perf_counter() - start, audio,
                       propagation.scene_cuts if propagation is not None else 0)


# --------------------------------------------------------------------------------------------
# Files, folders and globs of images and videos together (``colorjax colorize``).


def find_media(inputs) -> list[tuple[Path, Path]]:
    """:func:`colorjax.inference.colorize.find_images` with folders searched for videos as well."""
    from colorjax.inference.colorize import IMAGE_SUFFIXES, find_images

    return find_images(inputs, suffixes=IMAGE_SUFFIXES + VIDEO_SUFFIXES)


def video_output_path(out_dir, name: Path) -> Path:
    """Where the video whose output name is ``name`` goes: ``OUT/name.mp4``."""
    return Path(out_dir) / name.with_name(name.name + OUTPUT_SUFFIX)


def check_video_outputs_spare_inputs(todo: list[tuple[Path, Path]], out_dir) -> None:
    """A ValueError when a video's output would replace one of the inputs (compared by identity:
    :func:`colorjax.inference.colorize.refuse_replacing_inputs`)."""
    from colorjax.inference.colorize import refuse_replacing_inputs

    refuse_replacing_inputs((path for path, _ in todo),
                            ((path, video_output_path(out_dir, name)) for path, name in todo if is_video(path)))


def colorize_media(
    colorizer,
    inputs,
    out_dir,
    *,
    fmt: str = "png",
    temporal: str = "flow",
    progress: bool = True,
    on_error: Callable[[Path, str], None] | None = None,
    overwrite: bool = False,
    hints=None,
):
    """Colorize images and videos (files, folders, globs) into ``out_dir`` with ``colorizer`` (a
    :class:`colorjax.inference.Colorizer`): images as :func:`colorjax.inference.colorize.colorize_files`
    does, each video into ``OUT/NAME.mp4`` by :func:`colorize_video`. Returns one
    :class:`colorjax.inference.colorize.ColorizeSummary`; a bad video is reported and skipped like a bad image."""
    from colorjax.inference.colorize import ColorizeSummary, check_output_folder, colorize_files

    if temporal not in TEMPORAL_MODES:
        raise ValueError(f"temporal mode {temporal!r}: expected one of {TEMPORAL_MODES}")
    todo = find_media(inputs)
    videos = [entry for entry in todo if is_video(entry[0])]
    images = [entry for entry in todo if not is_video(entry[0])]
    if videos and hints is not None:
        raise ValueError(f"{videos[0][0]}: hints apply to images only; colorize videos without --hints")
    check_video_outputs_spare_inputs(todo, out_dir)
    check_output_folder(out_dir)
    summary = ColorizeSummary()
    if images:
        summary = colorize_files(colorizer, [], out_dir, fmt=fmt, progress=progress, on_error=on_error,
                                 overwrite=overwrite, hints=hints, entries=images)
    colorize = frame_colorizer(colorizer) if videos else None
    batch_size = colorizer.batch_size
    for path, name in videos:
        target = video_output_path(out_dir, name)
        if target.exists() and not overwrite:
            summary.skipped.append(target)
            continue
        try:
            result = colorize_video(colorize, path, target, batch_size=batch_size, temporal=temporal, progress=progress)
        except (BadVideoError, OSError) as error:
            reason = error.problem if isinstance(error, BadVideoError) else str(error)
            summary.failed[str(path)] = reason
            if on_error is not None:
                on_error(path, reason)
            continue
        summary.written.append(result.target)
    return summary
