#!/usr/bin/python3
"""make_fixtures.py — generates the tiny image fixtures used by
tests/unit/test_image*.c. Run with Debian's python3-pil:

    /usr/bin/python3 tests/data/images/make_fixtures.py

Pixel values here are duplicated in the C tests (PIX4x3, BLOCKS), which
assert exact or tolerance-bounded values. Formats PIL cannot write (BMP
variants, 16-bit RGB and interlaced PNG) are written by hand below, so the
fixtures exercise every branch of the decoders.
"""
import io
import os
import struct
import zlib

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))

# 4x3, row-major, distinct colours (tests/unit/test_image.c: PIX4x3).
PIX4x3 = [
    (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0),
    (0, 255, 255), (255, 0, 255), (10, 20, 30), (40, 50, 60),
    (70, 80, 90), (100, 110, 120), (130, 140, 150), (250, 251, 252),
]
# 3x2 grid of 16x16 blocks → 48x32 (JPEG-friendly: blocks align with MCUs).
BLOCKS = [(200, 30, 30), (30, 200, 30), (30, 30, 200),
          (220, 220, 40), (40, 220, 220), (220, 40, 220)]
# CMYK ink amounts with black ink, 3x2 blocks (test_image_decode.c: CMYK_K);
# RGB = (255 - ink) * (255 - K) / 255.
CMYK_K = [(0, 0, 0, 128), (200, 0, 0, 50), (0, 200, 0, 100),
          (0, 0, 200, 150), (60, 120, 180, 30), (10, 20, 30, 220)]


def out(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def pil_bytes(img, fmt, **kw):
    b = io.BytesIO()
    img.save(b, fmt, **kw)
    return b.getvalue()


def rgb4x3():
    a = np.array(PIX4x3, np.uint8).reshape(3, 4, 3)
    return Image.fromarray(a, "RGB")


def blocks():
    a = np.zeros((32, 48, 3), np.uint8)
    for i, c in enumerate(BLOCKS):
        by, bx = divmod(i, 3)
        a[by * 16:(by + 1) * 16, bx * 16:(bx + 1) * 16] = c
    return Image.fromarray(a, "RGB")


# ---------------------------------------------------------------- BMP
def bmp(w, h, bpp, rows_bytes, *, top_down=False, dib=40, comp=0,
        masks=None, palette=None, masks_after=False):
    """rows_bytes: list of top-to-bottom rows, unpadded."""
    stride = (w * bpp + 31) // 32 * 4
    rows = [r + b"\0" * (stride - len(r)) for r in rows_bytes]
    if not top_down:
        rows = rows[::-1]
    pix = b"".join(rows)
    if dib == 12:
        hdr = struct.pack("<IHHHH", 12, w, h, 1, bpp)
        pal = b"".join(struct.pack("BBB", b, g, r) for r, g, b in palette or [])
    else:
        hdr = struct.pack("<IiiHHIIiiII", dib, w, -h if top_down else h, 1,
                          bpp, comp, len(pix), 2835, 2835,
                          len(palette) if palette else 0, 0)
        extra = b""
        if dib >= 52:
            m = list(masks or [0, 0, 0, 0]) + [0] * 4
            extra = struct.pack("<IIII", *m[:4])[: (12 if dib == 52 else 16)]
            if dib > 56:
                extra += b"\0" * (dib - 56)
        hdr += extra
        pal = b"".join(struct.pack("BBBB", b, g, r, 0) for r, g, b in palette or [])
        if masks_after:
            pal = struct.pack("<III", *masks[:3]) + pal
    off = 14 + len(hdr) + len(pal)
    fh = b"BM" + struct.pack("<IHHI", off + len(pix), 0, 0, off)
    return fh + hdr + pal + pix


def bmp_fixtures():
    w, h = 4, 3
    rows24 = [b"".join(struct.pack("BBB", b, g, r) for r, g, b in PIX4x3[y * w:(y + 1) * w]) for y in range(h)]
    out("rgb4x3_24_bu.bmp", bmp(w, h, 24, rows24))
    out("rgb4x3_24_td.bmp", bmp(w, h, 24, rows24, top_down=True))
    out("rgb4x3_24_core.bmp", bmp(w, h, 24, rows24, dib=12))
    rows32 = [b"".join(struct.pack("BBBB", b, g, r, 0x80) for r, g, b in PIX4x3[y * w:(y + 1) * w]) for y in range(h)]
    out("rgb4x3_32_bu.bmp", bmp(w, h, 32, rows32))
    out("rgb4x3_32_td.bmp", bmp(w, h, 32, rows32, top_down=True))
    # 32-bit bit fields, RGBA byte order (R in the low byte), V5 header.
    rows32bf = [b"".join(struct.pack("BBBB", r, g, b, 0xFF) for r, g, b in PIX4x3[y * w:(y + 1) * w]) for y in range(h)]
    out("rgb4x3_32_bf_v5.bmp", bmp(w, h, 32, rows32bf, dib=124, comp=3,
                                    masks=[0xFF, 0xFF00, 0xFF0000, 0xFF000000]))
    # 32-bit bit fields after a 40-byte header, top-down, V4 byte order.
    out("rgb4x3_32_bf_td.bmp", bmp(w, h, 32, rows32, top_down=True, comp=3,
                                   masks=[0xFF0000, 0xFF00, 0xFF], masks_after=True))
    # 16-bit 5-6-5 bit fields (V4 header).
    rows16 = [b"".join(struct.pack("<H", (r >> 3) << 11 | (g >> 2) << 5 | (b >> 3)) for r, g, b in PIX4x3[y * w:(y + 1) * w]) for y in range(h)]
    out("rgb4x3_16_565.bmp", bmp(w, h, 16, rows16, dib=108, comp=3,
                                 masks=[0xF800, 0x07E0, 0x001F, 0]))
    # 16-bit default 5-5-5 (BI_RGB).
    rows555 = [b"".join(struct.pack("<H", (r >> 3) << 10 | (g >> 3) << 5 | (b >> 3)) for r, g, b in PIX4x3[y * w:(y + 1) * w]) for y in range(h)]
    out("rgb4x3_16_555.bmp", bmp(w, h, 16, rows555))
    # 8-bit and 4-bit palettes: index i is PIX4x3[i], pixel i uses index i.
    rows8 = [bytes(range(y * w, (y + 1) * w)) for y in range(h)]
    out("rgb4x3_8_pal.bmp", bmp(w, h, 8, rows8, palette=PIX4x3))
    rows4 = [bytes([(a << 4) | b for a, b in zip(r[0::2], r[1::2])]) for r in rows8]
    out("rgb4x3_4_pal.bmp", bmp(w, h, 4, rows4, palette=PIX4x3))
    # 1-bit: checkerboard of PIX4x3[0] and PIX4x3[11].
    rows1 = [bytes([0b1010 << 4 if y % 2 == 0 else 0b0101 << 4]) for y in range(h)]
    out("check4x3_1.bmp", bmp(w, h, 1, rows1, palette=[PIX4x3[0], PIX4x3[11]]))
    # RLE8 header (unsupported).
    out("rle8.bmp", bmp(w, h, 8, rows8, comp=1, palette=PIX4x3))


# ---------------------------------------------------------------- PNG
def png_chunk(typ, data):
    return struct.pack(">I", len(data)) + typ + data + struct.pack(">I", zlib.crc32(typ + data) & 0xFFFFFFFF)


def png_raw(w, h, bit_depth, color_type, raw, interlace=0):
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) +
            png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b""))


def png_fixtures():
    img = rgb4x3()
    out("rgb4x3.png", pil_bytes(img, "PNG"))
    a = np.asarray(img)
    # Gray: expected R=G=B=L.
    gray = Image.fromarray(a[:, :, 1], "L")
    out("gray4x3.png", pil_bytes(gray, "PNG"))
    # Palette (colour type 3) with a tRNS entry: transparency is dropped.
    pal = img.quantize(colors=16, method=Image.Quantize.MEDIANCUT)
    assert np.array_equal(np.asarray(pal.convert("RGB")), a), "palette lossy"
    out("pal4x3.png", pil_bytes(pal, "PNG", transparency=0))
    # RGBA with varying alpha: colours must come back unchanged.
    alpha = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    rgba = Image.fromarray(np.dstack([a, alpha]), "RGBA")
    out("rgba4x3.png", pil_bytes(rgba, "PNG"))
    la = Image.fromarray(np.dstack([a[:, :, 1], alpha]), "LA")
    out("la4x3.png", pil_bytes(la, "PNG"))
    # 16-bit RGB: sample v*257 + 0x11 — high byte v, low byte noise.
    raw = b"".join(b"\0" + b"".join(struct.pack(">HHH", *(c * 256 + 0x11 for c in px)) for px in PIX4x3[y * 4:(y + 1) * 4]) for y in range(3))
    out("rgb16_4x3.png", png_raw(4, 3, 16, 2, raw))
    # 16-bit gray.
    raw = b"".join(b"\0" + b"".join(struct.pack(">H", px[1] * 256 + 0x22) for px in PIX4x3[y * 4:(y + 1) * 4]) for y in range(3))
    out("gray16_4x3.png", png_raw(4, 3, 16, 0, raw))
    # Adam7 interlaced 8-bit RGB.
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
              (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    raw = b""
    for x0, y0, dx, dy in passes:
        for y in range(y0, 3, dy):
            xs = list(range(x0, 4, dx))
            if not xs:
                continue
            raw += b"\0" + b"".join(bytes(PIX4x3[y * 4 + x]) for x in xs)
    out("rgb4x3_adam7.png", png_raw(4, 3, 8, 2, raw, interlace=1))
    # A header claiming 100000x100000 (then IDAT of nothing useful).
    out("huge_100000.png", png_raw(100000, 100000, 8, 2, b"\0" * 64))


# ---------------------------------------------------------------- WebP
def webp_fixtures():
    out("rgb4x3_lossless.webp", pil_bytes(rgb4x3(), "WEBP", lossless=True, exact=True))
    out("blocks_lossy.webp", pil_bytes(blocks(), "WEBP", quality=95))
    a = np.asarray(rgb4x3())
    alpha = np.full((3, 4), 7, np.uint8)
    rgba = Image.fromarray(np.dstack([a, alpha]), "RGBA")
    out("rgba4x3_lossless.webp", pil_bytes(rgba, "WEBP", lossless=True, exact=True))
    # Animated (two frames): refused as unsupported.
    frames = [rgb4x3(), rgb4x3().transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    out("anim4x3.webp", pil_bytes(frames[0], "WEBP", save_all=True,
                                  append_images=frames[1:], lossless=True,
                                  duration=100))


# ---------------------------------------------------------------- JPEG
# PIL transpose op that maps the stored image to upright, per orientation
# (PIL's ImageOps.exif_transpose table), and its inverse used to store it.
TO_UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
              4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
              6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}
INVERSE = {Image.Transpose.ROTATE_270: Image.Transpose.ROTATE_90,
           Image.Transpose.ROTATE_90: Image.Transpose.ROTATE_270}


def jpeg_fixtures():
    from PIL import ImageOps
    up = blocks()
    kw = dict(quality=95, subsampling=0)
    out("blocks.jpg", pil_bytes(up, "JPEG", **kw))
    out("blocks_420.jpg", pil_bytes(up, "JPEG", quality=90, subsampling=2))
    out("blocks_progressive.jpg", pil_bytes(up, "JPEG", progressive=True, **kw))
    out("blocks_gray.jpg", pil_bytes(up.convert("L"), "JPEG", quality=95))
    out("blocks_cmyk.jpg", pil_bytes(up.convert("CMYK"), "JPEG", **kw))
    ink = np.zeros((32, 48, 4), np.uint8)
    for i, c in enumerate(CMYK_K):
        by, bx = divmod(i, 3)
        ink[by * 16:(by + 1) * 16, bx * 16:(bx + 1) * 16] = c
    data = pil_bytes(Image.fromarray(ink, "CMYK"), "JPEG", **kw)
    back = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), int)
    for i, (c, m, y, k) in enumerate(CMYK_K):
        by, bx = divmod(i, 3)
        want = [(255 - v) * (255 - k) / 255 for v in (c, m, y)]
        got = back[by * 16 + 8, bx * 16 + 8]
        assert np.abs(got - want).max() < 8, (i, got, want)
    out("cmyk_k.jpg", data)
    out("ycck_k.jpg", ycck_jpeg(ink))


def ycck_jpeg(ink):
    """A YCCK JPEG (PIL cannot write one): libjpeg-turbo's TurboJPEG turns
    packed CMYK into YCCK with an Adobe marker. Adobe convention stores
    255 - ink, so that is what we pass; PIL must read back the inks."""
    import ctypes
    tj = ctypes.CDLL("libturbojpeg.so.0")
    tj.tjInitCompress.restype = ctypes.c_void_p
    h = tj.tjInitCompress()
    stored = (255 - ink).astype(np.uint8).tobytes()
    buf, size = ctypes.POINTER(ctypes.c_ubyte)(), ctypes.c_ulong(0)
    TJPF_CMYK, TJSAMP_444 = 11, 0
    rc = tj.tjCompress2(ctypes.c_void_p(h), stored, 48, 0, 32, TJPF_CMYK,
                        ctypes.byref(buf), ctypes.byref(size), TJSAMP_444, 95, 0)
    assert rc == 0, "tjCompress2 failed"
    data = ctypes.string_at(buf, size.value)
    tj.tjFree(buf)
    tj.tjDestroy(ctypes.c_void_p(h))
    back = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), int)
    for i, (c, m, y, k) in enumerate(CMYK_K):
        by, bx = divmod(i, 3)
        want = [(255 - v) * (255 - k) / 255 for v in (c, m, y)]
        got = back[by * 16 + 8, bx * 16 + 8]
        assert np.abs(got - want).max() < 8, ("ycck", i, got, want)
    return data
    for o in range(1, 9):
        stored = up
        if o != 1:
            op = TO_UPRIGHT[o]
            stored = up.transpose(INVERSE.get(op, op))
        exif = Image.Exif()
        exif[0x0112] = o
        data = pil_bytes(stored, "JPEG", exif=exif.tobytes(), **kw)
        # Self-check with PIL's own interpretation of the tag.
        back = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
        diff = np.abs(np.asarray(back, int) - np.asarray(up, int)).max()
        assert back.size == up.size and diff < 16, (o, back.size, diff)
        out(f"orient_{o}.jpg", data)


# ---------------------------------------------------------------- resize
def torchvision_short_crop(img, short, cw, ch):
    """torchvision Resize(short) + CenterCrop((ch, cw)) on a PIL image."""
    w, h = img.size
    if w <= h:
        nw, nh = short, int(short * h / w)
    else:
        nw, nh = int(short * w / h), short
    r = img.resize((nw, nh), Image.BILINEAR)
    left, top = int(round((nw - cw) / 2.0)), int(round((nh - ch) / 2.0))
    return r.crop((left, top, left + cw, top + ch))


def tf_central_crop(img, fraction):
    """tf.image.central_crop's box, in PIL terms."""
    w, h = img.size
    x0 = int((w - w * fraction) / 2)
    y0 = int((h - h * fraction) / 2)
    return img.crop((x0, y0, w - x0, h - y0))


def resize_fixtures():
    """PIL oracle outputs for test_image_preprocess.c (raw RGB8, HWC)."""
    rng = np.random.default_rng(1234)
    src = Image.fromarray(rng.integers(0, 256, (23, 37, 3), np.uint8), "RGB")
    out("rand37x23.png", pil_bytes(src, "PNG"))
    cases = {
        "exact_16x12": src.resize((16, 12), Image.BILINEAR),
        "exact_50x40": src.resize((50, 40), Image.BILINEAR),
        "exact_9x40": src.resize((9, 40), Image.BILINEAR),
        "exact_1x1": src.resize((1, 1), Image.BILINEAR),
        "short20_crop15x15": torchvision_short_crop(src, 20, 15, 15),
        "short30_crop17x29": torchvision_short_crop(src, 30, 17, 29),
        "central0875_16x16": tf_central_crop(src, 0.875).resize((16, 16), Image.BILINEAR),
    }
    for name, img in cases.items():
        out(f"rand37x23_{name}.rgb", np.asarray(img, np.uint8).tobytes())


if __name__ == "__main__":
    resize_fixtures()
    bmp_fixtures()
    png_fixtures()
    webp_fixtures()
    jpeg_fixtures()
