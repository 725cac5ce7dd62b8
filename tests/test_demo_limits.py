"""The demo server's limits over real loopback connections (issue 28, items 7, 11 and 14): uploads
are streamed with a running count and refused at the limit (chunked ones too, before they end),
every endpoint's body is capped, idle connections are closed, and malformed recolor requests
(upload_id Infinity, JSON nested deep) are a 400 naming the problem, not a 500. Every socket has a
timeout, so no test can hang."""

from __future__ import annotations

import io
import json
import select
import socket
import time

import numpy as np
import pytest
from PIL import Image

# Starting a server compiles the model (a minute on a loaded 2-core machine): the slow set.
pytestmark = pytest.mark.slow

MODEL_CONFIG = {"backbone": "eccv16", "head": "classification", "width": 1 / 16}
LIMIT = 1024 * 1024  # the upload limit these tests serve with
CHUNK = 64 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory, save_random_model):
    from colorjax.demo import start

    checkpoint = save_random_model(tmp_path_factory.mktemp("limits-ckpt"), MODEL_CONFIG)
    with start(checkpoint, size=32, max_upload_bytes=LIMIT, idle_timeout=1.0) as running:
        yield running


def _address(server):
    host, port = server.url.removeprefix("http://").rstrip("/").split(":")
    return host, int(port)


def _connect(server, timeout=10.0) -> socket.socket:
    connection = socket.create_connection(_address(server), timeout=timeout)
    assert connection.getpeername()[0] == "127.0.0.1"
    return connection


def _read_response(connection) -> tuple[int, dict]:
    data = b""
    while b"\r\n\r\n" not in data:
        part = connection.recv(65536)
        if not part:
            break
        data += part
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next((line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0))
    while len(body) < length:
        part = connection.recv(65536)
        if not part:
            break
        body += part
    return int(head.split(b" ")[1]), json.loads(body or b"{}")


def _post(server, path, body: bytes, content_type="application/json") -> tuple[int, dict]:
    with _connect(server) as connection:
        connection.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
                           f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        return _read_response(connection)


def _send_chunked_until_answered(server, path, total: int) -> tuple[int, int, dict]:
    """Send ``total`` bytes in chunks without ending the body; stop as soon as the server answers.
    Returns (bytes sent, status, JSON body)."""
    with _connect(server) as connection:
        connection.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                           f"Connection: close\r\n\r\n".encode())
        sent, chunk = 0, b"%x\r\n" % CHUNK + b"\x89" * CHUNK + b"\r\n"
        while sent < total:
            if select.select([connection], [], [], 0)[0]:
                break  # the server answered before the body ended
            try:
                connection.sendall(chunk)
            except (BlockingIOError, socket.timeout, ConnectionError):
                break  # the server stopped reading
            sent += CHUNK
        else:
            connection.sendall(b"0\r\n\r\n")
        status, body = _read_response(connection)
        return sent, status, body


def test_a_chunked_upload_is_refused_at_the_limit_before_it_ends(server):
    total = 64 * LIMIT
    sent, status, body = _send_chunked_until_answered(server, "/api/colorize?name=big.png", total)
    assert sent < total // 2, f"the server read all {sent} bytes of an upload over its {LIMIT}-byte limit"
    assert status == 413 and "big.png: more than the 1.0 MB this demo takes" in body["error"]


def test_a_declared_upload_over_the_limit_is_refused_from_its_header(server):
    with _connect(server) as connection:
        connection.sendall(b"POST /api/colorize?name=huge.png HTTP/1.1\r\nHost: x\r\n"
                           b"Content-Length: 5000000000\r\nConnection: close\r\n\r\n")
        status, body = _read_response(connection)
    assert status == 413 and "huge.png: 4768.4 MB is more than the 1.0 MB" in body["error"]


def test_recolor_bodies_are_capped(server):
    padded = json.dumps({"upload_id": 1, "temperature": 0.5, "pad": "x" * (2 * 1024 * 1024)}).encode()
    status, body = _post(server, "/api/recolor", padded)
    assert status == 413 and "recolor: 2.0 MB is more than the 1.0 MB" in body["error"]
    sent, status, body = _send_chunked_until_answered(server, "/api/recolor", 64 * LIMIT)
    assert status == 413 and sent < 32 * LIMIT


@pytest.mark.parametrize("payload, message", [
    (b'{"upload_id": Infinity, "temperature": 0.5}', "upload_id: expected a finite number, got inf"),
    (b'{"upload_id": 1.5, "temperature": 0.5}', "upload_id: expected a whole number, got 1.5"),
    (b'{"upload_id": "1", "temperature": 0.5}', "upload_id: expected a number, got '1'"),
    (b'{"upload_id": 1, "temperature": NaN}', "temperature: expected a finite number, got nan"),
    (b"[" * 200_000 + b"]" * 200_000, "the JSON nests too deeply"),
    (b'{"upload_id": {"a": [[1]]}, "temperature": 0.5}', "upload_id: expected a number"),
])
def test_malformed_recolor_requests_are_a_400_naming_the_problem(server, payload, message):
    status, body = _post(server, "/api/recolor", payload)
    assert status == 400 and message in body["error"], body


def test_the_upload_temperature_follows_the_rule_set(server):
    buffer = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), 120, np.uint8)).save(buffer, format="PNG")
    status, body = _post(server, "/api/colorize?name=a.png&temperature=nan", buffer.getvalue(), "image/png")
    assert status == 400 and "temperature: expected a finite number, got nan" in body["error"]
    status, body = _post(server, "/api/colorize?name=a.png&temperature=0.4", buffer.getvalue(), "image/png")
    assert status == 200 and body["temperature"] == 0.4


@pytest.mark.parametrize("opening", [b"", b"POST /api/colorize HTTP/1.1\r\nHost: x\r\n",
                                     b"POST /api/colorize HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc"])
def test_idle_connections_are_closed(server, opening):
    with _connect(server) as connection:
        connection.sendall(opening)
        start = time.monotonic()
        while True:  # a closed connection reads as b"" (after any 4xx the server may send first)
            data = connection.recv(65536)
            if not data:
                break
        assert time.monotonic() - start < 5.0  # the server's idle timeout is 1 s; a socket timeout raises at 10


def test_the_server_still_serves_after_the_refusals(server):
    status, body = _post(server, "/api/recolor", b'{"upload_id": 999999, "temperature": 0.5}')
    assert status == 409 and "upload the image again" in body["error"]
