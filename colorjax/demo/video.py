"""The demo's short-video upload: bounded, colorized by the video path, returned as an MP4.

An upload is refused, with a message the page shows, when it is over :data:`MAX_VIDEO_BYTES`, has
more than :data:`MAX_VIDEO_FRAMES` frames (or a header that does not say how many), has frames over
:data:`MAX_VIDEO_PIXELS`, or is not a readable video. Longer films go through ``colorjax colorize``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from colorjax.inference.video import (
    TEMPORAL_MODES, BadVideoError, VideoResult, colorize_video, frame_colorizer, probe_video,
)

MAX_VIDEO_BYTES = 50 * 2**20
MAX_VIDEO_FRAMES = 300  # 10 s at 30 frames/s, 12 s at 25
MAX_VIDEO_PIXELS = 1280 * 720


class VideoUploadError(ValueError):
    """An upload the demo does not colorize; the message names the file and says why."""


def colorize_video_upload(engine, data: bytes, name: str, temperature: float,
                          temporal: str = "flow") -> tuple[bytes, VideoResult]:
    """The colorized MP4 of an uploaded video and what was done, through ``engine``'s model at its size."""
    temperature = engine._check_temperature(temperature)
    if temporal not in TEMPORAL_MODES:
        raise VideoUploadError(f"{name}: temporal must be one of {', '.join(TEMPORAL_MODES)}")
    if len(data) > MAX_VIDEO_BYTES:
        raise VideoUploadError(f"{name}: {len(data) / 2**20:.0f} MB is more than the {MAX_VIDEO_BYTES // 2**20} MB "
                               f"this demo takes for a video")
    with tempfile.TemporaryDirectory(prefix="colorjax-demo-") as folder:
        source = Path(folder) / ("upload" + Path(name).suffix.lower())
        source.write_bytes(data)
        try:
            info = probe_video(source)
        except BadVideoError as error:
            raise VideoUploadError(f"{name}: {error.problem}") from None
        if info.frames is None or info.frames > MAX_VIDEO_FRAMES:
            count = "an unknown number of" if info.frames is None else str(info.frames)
            raise VideoUploadError(f"{name}: {count} frames; this demo takes videos of at most {MAX_VIDEO_FRAMES} "
                                   f"frames (colorize longer ones with `colorjax colorize`)")
        if info.width * info.height > MAX_VIDEO_PIXELS:
            raise VideoUploadError(f"{name}: {info.width} x {info.height} frames; this demo takes at most "
                                   f"{MAX_VIDEO_PIXELS} pixels a frame (1280 x 720)")
        colorize = frame_colorizer(engine.colorizer, temperature)
        with engine._lock:  # one run at a time, as for photos
            try:
                result = colorize_video(colorize, source, Path(folder) / "colorized.mp4", temporal=temporal,
                                        progress=False)
            except BadVideoError as error:
                raise VideoUploadError(f"{name}: {error.problem}") from None
        return result.target.read_bytes(), result
