"""Robust decoding: every kind of awkward or bad input, with files the tests make."""

import io
import struct
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image

from colorjax.data import BadImageError, decode_image, load_image


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_16bit(values: np.ndarray) -> bytes:
    """A 16-bit PNG written by hand (Pillow cannot write 16-bit RGB): gray [H, W] or RGB [H, W, 3]."""
    height, width = values.shape[:2]
    colour_type = 0 if values.ndim == 2 else 2
    rows = b"".join(b"\x00" + values[y].astype(">u2").tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b"")


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a huge 8-bit gray image but carries almost no data (a bomb's header)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + png_chunk(b"IEND", b"")


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def write(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_plain_rgb_png_round_trips_exactly(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    path = write(tmp_path, "plain.png", encode(Image.fromarray(rgb), "PNG"))
    np.testing.assert_array_equal(load_image(path), rgb)
    assert decode_image(path.read_bytes()).conversions == ()


def test_grayscale_becomes_three_equal_channels(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    out = load_image(write(tmp_path, "gray.png", encode(Image.fromarray(gray, "L"), "PNG")))
    assert out.shape == (3, 4, 3) and out.dtype == np.uint8
    for channel in range(3):
        np.testing.assert_array_equal(out[..., channel], gray)


def test_sixteen_bit_gray_png_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 100, 65535, 5500]], np.uint16)
    out = load_image(write(tmp_path, "gray16.png", png_16bit(values)))
    # by hand: v / 257 rounded -> 0, 100, 255, round(21.40) = 21 (Pillow's convert("RGB") gives 255)
    np.testing.assert_array_equal(out[0, :, 0], [0, 100, 255, 21])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_sixteen_bit_rgb_png_keeps_the_high_byte(tmp_path):
    values = np.array([[[5500, 2750, 1833], [65535, 0, 256]]], np.uint16)
    out = load_image(write(tmp_path, "rgb16.png", png_16bit(values)))
    np.testing.assert_array_equal(out, values >> 8)


def test_sixteen_bit_gray_tiff(tmp_path):
    values = np.array([[0, 25700, 65535]], np.uint16)
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, values)
    out = load_image(write(tmp_path, "gray16.tif", buffer.getvalue()))
    np.testing.assert_array_equal(out[0, :, 1], [0, 100, 255])


def test_rgba_is_composited_over_white(tmp_path):
    rgba = np.array([[[255, 0, 0, 128], [0, 0, 255, 0], [10, 20, 30, 255]]], np.uint8)
    out = load_image(write(tmp_path, "alpha.png", encode(Image.fromarray(rgba, "RGBA"), "PNG")))
    alpha = 128 / 255  # by hand: c * alpha + 255 * (1 - alpha)
    expected = [[255, 255 * (1 - alpha), 255 * (1 - alpha)], [255, 255, 255], [10, 20, 30]]
    np.testing.assert_allclose(out[0], expected, atol=1)


def test_palette_with_and_without_transparency(tmp_path):
    palette_image = Image.new("P", (2, 1))
    palette_image.putpalette([200, 10, 20, 5, 150, 250] + [0] * 762)
    palette_image.putdata([0, 1])
    out = load_image(write(tmp_path, "palette.png", encode(palette_image, "PNG")))
    np.testing.assert_array_equal(out[0], [[200, 10, 20], [5, 150, 250]])
    transparent = load_image(write(tmp_path, "palette_t.png", encode(palette_image, "PNG", transparency=0)))
    np.testing.assert_array_equal(transparent[0], [[255, 255, 255], [5, 150, 250]])


def test_cmyk_jpeg_is_converted(tmp_path):
    cmyk = np.zeros((16, 16, 4), np.uint8)
    cmyk[..., 0], cmyk[..., 1], cmyk[..., 2] = 40, 120, 200  # K = 0: RGB = 255 - (C, M, Y)
    data = encode(Image.fromarray(cmyk, "CMYK"), "JPEG", quality=95)
    decoded = decode_image(data, "cmyk.jpg")
    assert "cmyk" in decoded.conversions
    np.testing.assert_allclose(np.asarray(decoded.image)[8, 8], [215, 135, 55], atol=4)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_exif_orientation_is_applied(tmp_path, fmt):
    rgb = np.zeros((10, 20, 3), np.uint8)
    rgb[:, :10] = (250, 0, 0)  # left half red, right half blue
    rgb[:, 10:] = (0, 0, 250)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    options = {"quality": 100, "subsampling": 0} if fmt == "JPEG" else {}
    decoded = decode_image(encode(Image.fromarray(rgb), fmt, exif=exif, **options), f"rotated.{fmt}")
    out = np.asarray(decoded.image).astype(int)
    assert decoded.conversions == ("exif-rotated",)
    np.testing.assert_allclose(out, np.rot90(rgb, k=-1), atol=3)  # clockwise: red on top


def test_corrupt_truncated_and_non_image_files_raise_naming_the_file(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    jpeg = encode(Image.fromarray(rgb), "JPEG")
    cases = {
        "random.jpg": np.random.default_rng(2).integers(0, 256, 500, dtype=np.uint8).tobytes(),
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "notes.png": b"this is a text file, not an image\n" * 5,
        "empty.webp": b"",
        "bad_body.png": encode(Image.fromarray(rgb), "PNG")[:60] + b"\x00" * 200,
    }
    for name, data in cases.items():
        path = write(tmp_path, name, data)
        with pytest.raises(BadImageError) as caught:
            load_image(path)
        assert str(path) in str(caught.value) and caught.value.name == str(path)
    with pytest.raises(BadImageError, match="cannot read"):
        load_image(tmp_path / "missing.png")


@pytest.mark.parametrize("side", [10_000, 20_000])  # above MAX_IMAGE_PIXELS, and above twice it
def test_decompression_bomb_is_refused_before_decoding(tmp_path, side):
    assert side * side > Image.MAX_IMAGE_PIXELS
    path = write(tmp_path, "bomb.png", png_header_only(side, side))
    with pytest.raises(BadImageError, match="decompression bomb") as caught:
        load_image(path)
    assert str(path) in str(caught.value)


def test_draft_decoding_keeps_at_least_the_requested_side():
    rgb = np.random.default_rng(3).integers(0, 256, (400, 600, 3), dtype=np.uint8)
    decoded = decode_image(encode(Image.fromarray(rgb), "JPEG"), "big.jpg", min_side=64)
    assert decoded.image.size == (150, 100)  # 1/4 scale; 1/8 (75 x 50) would be under 64
