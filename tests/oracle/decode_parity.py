"""PIL's decodes of files at the edges of their formats, for tests/data/test_decode_parity.cpp: what
Image.open(f).convert("RGB") gives, which our decoders must give too.

usage: decode_parity.py OUT_DIR
Writes OUT_DIR/FILE and OUT_DIR/FILE.npy (PIL's RGB pixels, int64, height x width x 3) for each case, and
OUT_DIR/cases.txt with one FILE per line.
"""
import io
import os
import sys

import numpy as np
from PIL import Image

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
cases = []


def case(name, data):
    """Writes the file and PIL's decode of it."""
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
    rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.int64)
    np.save(os.path.join(out, name + ".npy"), rgb)
    cases.append(name)


def encoded(image, fmt, **options):
    b = io.BytesIO()
    image.save(b, format=fmt, **options)
    return b.getvalue()


# 16-bit greyscale PNG: PIL opens it as 32-bit integers, and convert("RGB") clips them to 255 (it does not
# take the high byte). Values across the range, small ones included.
grey16 = np.array([[0, 1, 7, 128, 254, 255, 256, 300, 511, 4095, 40000, 65535]] * 3, dtype=np.uint16)
grey16[1] = grey16[1][::-1]
grey16[2] = np.arange(12, dtype=np.uint16) * 23
case("grey16.png", encoded(Image.fromarray(grey16), "PNG"))

# A PNG cut short after its image data: without IEND's CRC, without the whole IEND chunk, or without IEND
# and the last IDAT's CRC. PIL stops reading after the last IDAT's data and gives the whole image.
rng = np.random.default_rng(1)
whole = encoded(Image.fromarray(rng.integers(0, 256, (9, 13, 3), dtype=np.uint8)), "PNG")
assert whole[-12:] == b"\0\0\0\0IEND\xaeB`\x82"
case("png_no_iend_crc.png", whole[:-4])
case("png_no_iend.png", whole[:-12])
case("png_no_idat_crc.png", whole[:-16])



def gif_descriptor(data):
    """Where a GIF's first image descriptor starts: after the screen, its palette and any extensions."""
    i = 13 + (3 * (2 << (data[10] & 7)) if data[10] & 0x80 else 0)
    while data[i] == 0x21:
        i += 2
        while data[i]:
            i += 1 + data[i]
        i += 1
    assert data[i] == 0x2C
    return i


def gif_variant(data, screen=None, at=None, palette=True):
    """The GIF with another logical screen size, its first frame moved, or its global palette removed."""
    data = bytearray(data)
    d = gif_descriptor(data)
    if screen:
        data[6:10] = bytes([screen[0], 0, screen[1], 0])
    if at:
        data[d + 1:d + 5] = bytes([at[0], 0, at[1], 0])
    if not palette:
        del data[13:13 + 3 * (2 << (data[10] & 7))]
        data[10] &= 0x70
    return bytes(data)


# GIFs from PIL's encoder: 6x5, a palette of 16 colours, the second with a transparent index (5).
gif_image = Image.new("P", (6, 5))
gif_image.putpalette([v for i in range(16) for v in (i * 16, 255 - i * 9, (i * 77) % 256)])
gif_image.putdata([(x * 3 + y * 5) % 16 for y in range(5) for x in range(6)])
gif = encoded(gif_image, "GIF")
gif_transparent = encoded(gif_image, "GIF", transparency=5)

# A first frame past its logical screen: PIL grows the image to hold it, the rest the colour of palette
# entry 0 (or of the transparent index).
case("gif_frame_past_screen.gif", gif_variant(gif, screen=(3, 2)))
case("gif_frame_moved_past_screen.gif", gif_variant(gif, at=(2, 1)))
case("gif_frame_moved_past_screen_transparent.gif", gif_variant(gif_transparent, screen=(4, 4), at=(1, 2)))

# No palette at all, neither global nor the frame's: PIL opens it as greyscale, each index its grey level
# (around the frame: index 0, or the transparent index).
case("gif_no_palette.gif", gif_variant(gif, palette=False))
case("gif_no_palette_moved_transparent.gif", gif_variant(gif_transparent, screen=(8, 6), at=(1, 0), palette=False))
case("gif_no_palette_past_screen.gif", gif_variant(gif, screen=(4, 4), at=(1, 2), palette=False))

# Plain (ASCII) PNM, P1 to P3, with comments in the header and between samples, samples scaled from maxval.
pnm_rng = np.random.default_rng(2)


def plain_pnm(magic, samples, width, height, maxval=None, per_line=7):
    head = f"{magic}\n# a comment\n{width} {height}\n" + (f"{maxval}\n" if maxval else "")
    text = [" ".join(str(v) for v in samples[k:k + per_line]) for k in range(0, len(samples), per_line)]
    text.insert(1, "# a comment between samples")
    return (head + "\n".join(text) + "\n").encode()


bits = pnm_rng.integers(0, 2, 7 * 5)
case("plain.pbm", plain_pnm("P1", bits, 7, 5))
case("plain_packed.pbm", b"P1 7 5\n" + "".join(str(v) for v in bits).encode())
for maxval in (255, 15, 1000):
    case(f"plain_{maxval}.pgm", plain_pnm("P2", pnm_rng.integers(0, maxval + 1, 7 * 5), 7, 5, maxval))
    case(f"plain_{maxval}.ppm", plain_pnm("P3", pnm_rng.integers(0, maxval + 1, 3 * 7 * 5), 7, 5, maxval))
case("plain_small_values_1000.pgm", plain_pnm("P2", np.arange(35) % 6, 7, 5, 1000))
case("plain_no_final_newline.ppm", b"P3 2 1 255 1 2 3 250 251 252")

with open(os.path.join(out, "cases.txt"), "w") as fh:
    fh.write("\n".join(cases) + "\n")
print(f"{len(cases)} cases")
