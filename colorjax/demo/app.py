"""The demo's web server: a small Starlette app serving one hand-written page and a JSON API.

Routes (all on 127.0.0.1 by default):

- ``GET /``: the page (``page.html``, plain HTML and JavaScript, no build step);
- ``GET /api/model``: the model's facts, or the error that kept the checkpoint from loading;
- ``POST /api/colorize?name=FILE&temperature=T``: the file's bytes as the body; returns JSON with the
  gray and colorized images as PNG data URLs and the milliseconds each stage took;
- ``POST /api/colorize_video?name=FILE&temperature=T&temporal=flow``: a short video's bytes (bounded:
  :mod:`colorjax.demo.video`); returns the colorized MP4 (``X-Frames`` and ``X-Seconds`` headers);
- ``POST /api/recolor`` ``{"upload_id": N, "temperature": T, "hints": [...]}``: the last upload at
  another temperature and, for a model that takes hints, with these colour points (``hints`` as in a
  ``colorjax colorize --hints`` file: ``{"x", "y", "color": "#rrggbb"}`` in the upload's pixels;
  omitted: the points of the last result).

A refused upload or bad hint answers 4xx with ``{"error": message}``; the message is shown on the
page and logged. The model runs in a worker thread, so the server keeps answering while it computes.
"""

from __future__ import annotations

import base64
import importlib.resources
import json
import logging

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from colorjax import validation
from colorjax.demo.engine import DemoEngine, Rendering, UnknownUploadError, UploadError

log = logging.getLogger("colorjax.demo")

# Request bodies above this are refused: from their Content-Length before any byte is read, else
# (chunked uploads) as soon as the running count passes it (the pixel limit applies after).
DEFAULT_MAX_UPLOAD_BYTES = 200 * 1024 * 1024
# /api/recolor's JSON: 256 points (MAX_HINTS) take about 25 kB; nothing needs more than this.
MAX_RECOLOR_BYTES = 1024 * 1024


class BodyTooLarge(Exception):
    """A request body over its endpoint's limit (the message says which)."""


async def read_body(request: Request, limit: int, what: str) -> bytes:
    """The request's body, read as a stream with a running count: a :class:`BodyTooLarge` as soon
    as the declared length or the bytes received pass ``limit``, so no more is ever held."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"{what}: {int(declared) / 2**20:.1f} MB is more than the {limit / 2**20:.1f} MB "
                           f"this demo takes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(f"{what}: more than the {limit / 2**20:.1f} MB this demo takes")
    return bytes(body)


def page_html() -> str:
    return importlib.resources.files("colorjax.demo").joinpath("page.html").read_text(encoding="utf-8")


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _rendering_json(result: Rendering) -> dict:
    body = {
        "upload_id": result.upload_id, "name": result.name, "width": result.width, "height": result.height,
        "temperature": result.temperature, "colorized": _data_url(result.colorized_png),
        "timings_ms": result.timings_ms, "hints": result.hints,
    }
    if result.gray_png is not None:
        body["gray"] = _data_url(result.gray_png)
    return body


def _refuse(status: int, message: str) -> JSONResponse:
    log.warning("refused: %s", message)
    return JSONResponse({"error": message}, status_code=status)


def make_app(
    engine: DemoEngine | None, *, load_error: str | None = None, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
) -> Starlette:
    """The app for a loaded ``engine``, or (``engine`` None) one that shows ``load_error`` on the page."""
    page = page_html()

    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(page)

    async def model(request: Request) -> JSONResponse:
        if engine is None:
            return JSONResponse({"error": load_error or "no model loaded"}, status_code=503)
        return JSONResponse(engine.info.as_dict())

    def upload_request(request: Request, default_name: str):
        """``(name, temperature, refusal)`` of an upload: refused (no model, a bad temperature)
        before its body is read; the body's size is :func:`read_body`'s to check."""
        name = (request.query_params.get("name") or default_name)[:200]
        if engine is None:
            return name, None, _refuse(503, f"no model loaded: {load_error}")
        try:
            temperature = float(request.query_params.get("temperature", "0.38"))
        except ValueError:
            return name, None, _refuse(400, f"{name}: temperature must be a number")
        return name, temperature, None

    async def colorize(request: Request) -> JSONResponse:
        name, temperature, refusal = upload_request(request, "upload")
        if refusal is not None:
            return refusal
        try:
            data = await read_body(request, max_upload_bytes, name)
        except BodyTooLarge as error:
            return _refuse(413, str(error))
        try:
            result = await run_in_threadpool(engine.colorize, data, name, temperature)
        except (UploadError, ValueError) as error:
            return _refuse(400, str(error))
        except Exception as error:  # noqa: BLE001 - one bad upload must not stop the server
            log.exception("failed on %s", name)
            return _refuse(500, f"{name}: colorizing failed ({type(error).__name__}: {error})")
        log.info("colorized %s (%d x %d) in %.0f ms %s", name, result.width, result.height,
                 result.timings_ms["total"], result.timings_ms)
        return JSONResponse(_rendering_json(result))

    async def colorize_video(request: Request) -> Response:
        from colorjax.demo.video import MAX_VIDEO_BYTES, colorize_video_upload

        limit = min(max_upload_bytes, MAX_VIDEO_BYTES)
        name, temperature, refusal = upload_request(request, "upload.mp4")
        if refusal is not None:
            return refusal
        try:
            data = await read_body(request, limit, f"{name} (a video)")
        except BodyTooLarge as error:
            return _refuse(413, str(error))
        try:
            video, result = await run_in_threadpool(colorize_video_upload, engine, data, name, temperature,
                                                    request.query_params.get("temporal", "flow"))
        except ValueError as error:  # VideoUploadError: the file and why
            return _refuse(400, str(error))
        except Exception as error:  # noqa: BLE001 - one bad upload must not stop the server
            log.exception("failed on %s", name)
            return _refuse(500, f"{name}: colorizing failed ({type(error).__name__}: {error})")
        log.info("colorized video %s: %d frames in %.1f s", name, result.frames, result.seconds)
        return Response(video, media_type="video/mp4",
                        headers={"X-Frames": str(result.frames), "X-Seconds": f"{result.seconds:.2f}"})

    async def recolor(request: Request) -> JSONResponse:
        if engine is None:
            return _refuse(503, f"no model loaded: {load_error}")
        usage = 'recolor needs JSON {"upload_id": N, "temperature": T, "hints": [...] (optional)}'
        try:
            body = json.loads(await read_body(request, MAX_RECOLOR_BYTES, "recolor"))
            upload_id = validation.count(body["upload_id"], "upload_id", minimum=0)
            temperature = validation.number(body["temperature"], "temperature")
            hints = body.get("hints")
        except BodyTooLarge as error:
            return _refuse(413, str(error))
        except validation.ArgumentError as error:
            return _refuse(400, f"{error}; {usage}")
        except RecursionError:
            return _refuse(400, f"the JSON nests too deeply; {usage}")
        except (ValueError, KeyError, TypeError, AttributeError):
            return _refuse(400, usage)
        try:
            result = await run_in_threadpool(engine.recolor, upload_id, temperature, hints)
        except UnknownUploadError as error:
            return _refuse(409, error.args[0])
        except ValueError as error:  # HintError included: the point's number and the problem
            return _refuse(400, str(error))
        except Exception as error:  # noqa: BLE001
            log.exception("recolor failed")
            return _refuse(500, f"recolor failed ({type(error).__name__}: {error})")
        log.info("recolored upload %d at T = %.2f with %d hint(s) in %.0f ms", upload_id, temperature, result.hints,
                 result.timings_ms["total"])
        return JSONResponse(_rendering_json(result))

    routes = [
        Route("/", index),
        Route("/api/model", model),
        Route("/api/colorize", colorize, methods=["POST"]),
        Route("/api/recolor", recolor, methods=["POST"]),
        Route("/api/colorize_video", colorize_video, methods=["POST"]),
    ]
    return Starlette(routes=routes)
