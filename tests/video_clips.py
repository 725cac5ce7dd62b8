"""Tiny video clips made for the tests with PyAV (never a file from elsewhere): a smooth colour
pattern moving one pixel a frame, optionally with a sine tone as AAC audio."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

TONE_HZ = 440.0
SAMPLE_RATE = 16000


def moving_frames(frames: int, height: int = 32, width: int = 32, seed: int = 0) -> np.ndarray:
    """uint8 RGB [frames, H, W, 3]: smooth colour blobs translated by one pixel per frame."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : height, 0 : width + frames].astype(np.float32)
    channels = [
        127 + 100 * np.sin(xx / rng.uniform(3, 6) + rng.uniform(0, 6)) * np.cos(yy / rng.uniform(3, 6) + rng.uniform(0, 6))
        for _ in range(3)
    ]
    canvas = np.clip(np.stack(channels, -1), 0, 255).astype(np.uint8)
    return np.stack([canvas[:, t : t + width] for t in range(frames)])


def write_clip(path, frames: np.ndarray, *, rate: int = 10, tone_seconds: float | None = None,
               codec: str = "libx264", container_format: str | None = None) -> Path:
    """Write ``frames`` (uint8 RGB) as a video at ``rate`` frames/s, with ``tone_seconds`` of a
    440 Hz tone as AAC when given."""
    import av

    path = Path(path)
    with av.open(str(path), mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        audio = None
        if tone_seconds:
            audio = container.add_stream("aac", rate=SAMPLE_RATE)
            audio.layout = "mono"
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if audio is not None:
            samples = int(SAMPLE_RATE * tone_seconds)
            wave = (0.3 * np.sin(2 * np.pi * TONE_HZ * np.arange(samples) / SAMPLE_RATE)).astype(np.float32)
            chunk = 1024
            for start in range(0, samples, chunk):
                piece = av.AudioFrame.from_ndarray(wave[None, start : start + chunk], format="fltp", layout="mono")
                piece.sample_rate = SAMPLE_RATE
                piece.pts = start
                piece.time_base = Fraction(1, SAMPLE_RATE)
                container.mux(audio.encode(piece))
            container.mux(audio.encode(None))
    return path


def read_clip(path) -> tuple[np.ndarray, Fraction, list[bytes]]:
    """(frames uint8 RGB, average rate, the audio packets' bytes) of a video file."""
    import av

    with av.open(str(path)) as container:
        rate = container.streams.video[0].average_rate
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    audio = []
    with av.open(str(path)) as container:
        if container.streams.audio:
            audio = [bytes(p) for p in container.demux(audio=0) if p.size]
    return frames, rate, audio
