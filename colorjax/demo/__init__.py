"""A local colorization page for a checkpoint: ``colorjax demo --checkpoint DIR``.

Upload or drop an image and see gray | colorized at full resolution; a temperature slider for Q-bin
models; colour hints (click, pick, drag, remove) for user-guided models (SIGGRAPH17); download the
result as PNG; the model's facts and each run's time.

From Python: ``colorjax.demo.serve(checkpoint, port=8765)`` blocks until Ctrl-C;
``colorjax.demo.start(checkpoint)`` serves in a background thread and returns a handle with its
``url`` and ``stop()``. Serving needs the optional extra ``demo`` (starlette, uvicorn); the
inference (:class:`DemoEngine`) does not.
"""

from colorjax.demo.engine import DEFAULT_MAX_PIXELS, DemoEngine, ModelInfo, UploadError
from colorjax.demo.server import DEFAULT_PORT, DemoServer, serve, start

__all__ = ["DEFAULT_MAX_PIXELS", "DEFAULT_PORT", "DemoEngine", "DemoServer", "ModelInfo", "UploadError", "serve", "start"]
