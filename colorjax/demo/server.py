"""Start the demo: load the checkpoint, compile once, serve the page with uvicorn on 127.0.0.1.

``serve(...)`` blocks until Ctrl-C (the command line); ``start(...)`` runs the same server in a
background thread and returns a handle with its ``url`` and ``stop()`` (notebooks and tests).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from colorjax.demo.engine import DEFAULT_MAX_PIXELS, DemoEngine

log = logging.getLogger("colorjax.demo")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
# A connection that sends nothing for this long while the server waits on it (for its request line,
# headers or the rest of its body) is closed; between requests uvicorn's keep-alive timeout (5 s) applies.
IDLE_TIMEOUT_S = 30.0
INSTALL_HINT = 'the demo needs its optional extra: pip install -e ".[demo]" (starlette, uvicorn)'


def _require_serving_libraries() -> None:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as error:
        raise ImportError(f"{INSTALL_HINT} ({error})") from error


def free_port(host: str = DEFAULT_HOST) -> int:
    """A port that is free on ``host`` now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def load_engine(checkpoint, *, step=None, size=None, max_pixels=DEFAULT_MAX_PIXELS):
    """``(engine, None)``, or ``(None, message)`` when the checkpoint cannot serve (logged)."""
    try:
        engine = DemoEngine.from_checkpoint(checkpoint, step=step, size=size, max_pixels=max_pixels)
    except Exception as error:  # noqa: BLE001 - any failure becomes the page's message
        message = f"{checkpoint}: cannot load the model ({type(error).__name__}: {error})"
        log.error("%s", message)
        return None, message
    seconds = engine.warm_up()
    info = engine.info
    log.info("loaded %s step %d (%s x%g, %s) at %d px; compiled in %.1f s",
             info.name, info.step, info.backbone, info.width, info.head, info.size, seconds)
    return engine, None


class DemoServer:
    """A running demo server (see :func:`start`)."""

    def __init__(self, server, thread: threading.Thread, url: str, engine: DemoEngine | None, error: str | None):
        self._server = server
        self._thread = thread
        self.url = url
        self.engine = engine
        self.load_error = error

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> DemoServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def idle_timeout_protocol(seconds: float):
    """uvicorn's h11 protocol, closing a connection that sends nothing for ``seconds`` while the
    server waits on it; a request whose body is in is never cut while the model works on it."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class IdleTimeoutProtocol(H11Protocol):
        def connection_made(self, transport) -> None:
            self._idle_timer = None
            super().connection_made(transport)
            self._rearm()

        def data_received(self, data: bytes) -> None:
            self._rearm()
            super().data_received(data)

        def connection_lost(self, exc) -> None:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
            super().connection_lost(exc)

        def _rearm(self) -> None:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
            self._idle_timer = self.loop.call_later(seconds, self._on_idle)

        def _on_idle(self) -> None:
            self._idle_timer = None
            if self.transport.is_closing():
                return
            cycle = self.cycle
            if cycle is None or cycle.response_complete or cycle.more_body:  # waiting on the client
                log.info("closed a connection idle for %g s", seconds)
                self.transport.close()
            else:  # the whole request is in and the app is working on it
                self._rearm()

    return IdleTimeoutProtocol


def _uvicorn_server(checkpoint, host, port, step, size, max_pixels, log_level, *,
                    max_upload_bytes=None, idle_timeout=IDLE_TIMEOUT_S):
    _require_serving_libraries()
    import uvicorn

    from colorjax.demo.app import DEFAULT_MAX_UPLOAD_BYTES, make_app

    engine, error = load_engine(checkpoint, step=step, size=size, max_pixels=max_pixels)
    app = make_app(engine, load_error=error, max_upload_bytes=max_upload_bytes or DEFAULT_MAX_UPLOAD_BYTES)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False,
                            http=idle_timeout_protocol(idle_timeout))
    return uvicorn.Server(config), engine, error


def start(
    checkpoint: str | os.PathLike, *, host: str = DEFAULT_HOST, port: int | None = None, step: int | None = None,
    size: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS, log_level: str = "warning",
    startup_timeout: float = 30.0, max_upload_bytes: int | None = None, idle_timeout: float = IDLE_TIMEOUT_S,
) -> DemoServer:
    """Serve the demo in a background thread (``port`` None: a free one); returns once it listens.
    ``max_upload_bytes`` (default the app's 200 MB) caps an upload, ``idle_timeout`` the seconds a
    connection may send nothing while the server waits on it."""
    port = port or free_port(host)
    server, engine, error = _uvicorn_server(checkpoint, host, port, step, size, max_pixels, log_level,
                                            max_upload_bytes=max_upload_bytes, idle_timeout=idle_timeout)
    thread = threading.Thread(target=server.run, name="colorjax-demo", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the demo server did not start on {host}:{port}")
        time.sleep(0.02)
    return DemoServer(server, thread, f"http://{host}:{port}/", engine, error)


def serve(
    checkpoint: str | os.PathLike, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, step: int | None = None,
    size: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS, log_level: str = "info",
) -> None:
    """Serve the demo until interrupted, printing its address once it listens."""
    server, engine, error = _uvicorn_server(checkpoint, host, port, step, size, max_pixels, "warning")
    logging.getLogger("colorjax.demo").setLevel(log_level.upper())
    url = f"http://{host}:{port}/"
    watcher = threading.Thread(target=_announce, args=(server, url, engine, error), daemon=True)
    watcher.start()
    server.run()


def _announce(server, url, engine, error) -> None:
    while not server.started:
        if server.should_exit:
            return
        time.sleep(0.05)
    if engine is not None:
        info = engine.info
        what = f"{info.name} (step {info.step}, {info.backbone} {info.head}, {info.size} px)"
    else:
        what = f"no model: {error}"
    print(f"colorjax demo: {what}\n  open {url}  (Ctrl-C to stop)", flush=True)
