#!/usr/bin/env python3
"""make-corpus.py OUTDIR N [--jobs J] [--cache DIR]

imgspool's own benchmark corpus: N distinct phone-sized pictures made from real photographs
shipped in Debian's mate-backgrounds and ukui-wallpapers (fetched with `apt-get download`,
unpacked with `dpkg -x`, never installed). Each picture is a "hand-held shot" of one source:

  * a window of the source, zoomed 1.05x-1.8x past the widest window that fits, tilted by up to
    +-2.5 degrees (bicubic affine straight to the output size, so nothing is resampled twice),
  * a white-balance and exposure shift, a lens vignette of its own strength,
  * sensor grain: Gaussian luma noise with the picture's own seed (so no two pictures share
    a noise field and JPEGs land at the 2-5 MB of a real 12 MP phone shot).

Per 10 pictures (index mod 10): 1 -> PNG 2048x2048 (compression 6), 2 -> WebP 3000x2000 Q90,
the other 8 -> JPEG 4:2:0 at Q90-92, 4032x3024 or (one in five) portrait 3024x4032, each with an
EXIF block (Make, Model, Software, DateTimeOriginal, Orientation) written here byte by byte.
Every fifth JPEG (the first one included) is stored the way a phone stores a turned camera:
pixels rotated, Orientation 6, 3 or 8. So 3 pictures already hold one of each format and one
rotated JPEG, which is what the smoke run uses.

All choices come from SHA-256 of "imgspool-bench/corpus/v1/<index>", the work is done by the
`vips` CLI on uncompressed .v files, so the same N with the same package versions and libvips
gives byte-identical files (OUTDIR/SHA256SUMS lists them; OUTDIR/corpus.tsv describes them).
Files OUTDIR/bench-NNNN.{jpg,png,webp} from an earlier run are deleted first.
"""
import argparse
import concurrent.futures
import hashlib
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile

SEED = "imgspool-bench/corpus/v1"
PACKAGES = ["mate-backgrounds", "ukui-wallpapers"]
SOURCES = [  # under usr/share/backgrounds/ : photographs and photo-like renders, 1280-5640 px wide
    "mate/nature/Aqua.jpg", "mate/nature/Blinds.jpg", "mate/nature/Dune.jpg",
    "mate/nature/FreshFlower.jpg", "mate/nature/Garden.jpg", "mate/nature/GreenMeadow.jpg",
    "mate/nature/LadyBird.jpg", "mate/nature/RainDrops.jpg", "mate/nature/Storm.jpg",
    "mate/nature/TwoWings.jpg", "mate/nature/Wood.jpg", "mate/nature/YellowFlower.jpg",
    "mate/abstract/Elephants_5640x3172.jpg", "rhythm.jpg", "string.jpg",
    "calla.png", "goldfish.png", "fluent-color.png",
]
SHAPES = {"L": (4032, 3024), "P": (3024, 4032), "S": (2048, 2048), "W": (3000, 2000)}
STORED_ROTATION = {1: None, 6: "d270", 3: "d180", 8: "d90"}  # what a phone does to the pixels


def run(*args):
    proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def header(path, field):
    return run("vipsheader", "-f", field, path).strip()


class Randoms:
    """Uniform numbers in [0, 1) drawn from the SHA-256 chain of one picture's index."""

    def __init__(self, index):
        self.block = hashlib.sha256(f"{SEED}/{index}".encode()).digest()
        self.pos = 0

    def next(self):
        if self.pos + 4 > len(self.block):
            self.block = hashlib.sha256(self.block).digest()
            self.pos = 0
        value = struct.unpack_from(">I", self.block, self.pos)[0]
        self.pos += 4
        return value / 2**32

    def between(self, low, high):
        return low + (high - low) * self.next()

    def pick(self, n):
        return int(self.next() * n)


def plan(n):
    pictures, jpeg_count = [], 0
    for i in range(n):
        r = Randoms(i)
        slot = i % 10
        p = {"index": i, "source": r.pick(len(SOURCES)), "orientation": 1}
        if slot == 1:
            p.update(fmt="png", shape="S", quality=0, sigma=r.between(1.5, 2.5))
        elif slot == 2:
            p.update(fmt="webp", shape="W", quality=90, sigma=r.between(2.5, 3.5))
        else:
            p.update(fmt="jpg", shape="P" if r.pick(5) == 0 else "L", quality=90 + r.pick(3),
                     sigma=r.between(3.5, 5.5))
            if jpeg_count % 5 == 0:
                p["orientation"] = (6, 3, 8)[(jpeg_count // 5) % 3]
                p["shape"] = "L" if p["orientation"] == 3 else "P"  # the upright picture's shape
            jpeg_count += 1
        p.update(zoom=r.between(1.05, 1.8), angle=r.between(-2.5, 2.5), cx=r.next(), cy=r.next(),
                 exposure=r.between(0.90, 1.10), gains=[r.between(0.95, 1.05) for _ in range(3)],
                 offset=r.between(-5, 5), vignette=r.between(0.10, 0.30), seed=r.pick(2**31 - 1),
                 when=(1 + r.pick(28), r.pick(24), r.pick(60), r.pick(60)))
        p["name"] = f"bench-{i:04d}.{p['fmt']}"
        pictures.append(p)
    return pictures


def exif_segment(p):
    """APP1 Exif block, little-endian TIFF: IFD0 (Make, Model, Orientation, Software, ExifIFD)
    and an Exif IFD with DateTimeOriginal."""
    day, hour, minute, second = p["when"]
    ascii_tags = {0x010F: b"BenchCam\0", 0x0110: b"Phone 12MP\0", 0x0131: b"imgspool bench corpus v1\0"}
    date = b"2025:05:%02d %02d:%02d:%02d\0" % (day, hour, minute, second)
    ifd0_count = 5
    ifd0_size = 2 + ifd0_count * 12 + 4
    data_at = 8 + ifd0_size
    blobs, entries = b"", []
    for tag, value in sorted(ascii_tags.items()):
        entries.append(struct.pack("<HHII", tag, 2, len(value), data_at + len(blobs)))
        blobs += value
    entries.insert(2, struct.pack("<HHIHH", 0x0112, 3, 1, p["orientation"], 0))
    exif_ifd_at = data_at + len(blobs)
    entries.append(struct.pack("<HHII", 0x8769, 4, 1, exif_ifd_at))
    exif_ifd = struct.pack("<H", 1) + struct.pack("<HHII", 0x9003, 2, len(date), exif_ifd_at + 18)
    exif_ifd += struct.pack("<I", 0) + date
    tiff = b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", ifd0_count) + b"".join(entries)
    tiff += struct.pack("<I", 0) + blobs + exif_ifd
    body = b"Exif\0\0" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


def add_exif(path, p):
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] != b"\xff\xd8":
        raise RuntimeError(f"{path}: not a JPEG")
    at = 2
    if data[2:4] == b"\xff\xe0":  # keep the JFIF APP0 first
        at = 4 + struct.unpack(">H", data[4:6])[0]
    with open(path, "wb") as f:
        f.write(data[:at] + exif_segment(p) + data[at:])


def window(p, src_w, src_h):
    """vips affine arguments mapping a tilted, zoomed window of the source onto the output."""
    ow, oh = SHAPES[p["shape"]]
    a = math.radians(p["angle"])
    c, s = abs(math.cos(a)), abs(math.sin(a))
    margin = 8
    fit = max((ow * c + oh * s) / (src_w - margin), (ow * s + oh * c) / (src_h - margin))
    scale = fit * p["zoom"]  # output pixels per source pixel
    half_x = (ow * c + oh * s) / scale / 2
    half_y = (ow * s + oh * c) / scale / 2
    cx = margin / 2 + half_x + (src_w - margin - 2 * half_x) * p["cx"]
    cy = margin / 2 + half_y + (src_h - margin - 2 * half_y) * p["cy"]
    m = [scale * math.cos(a), -scale * math.sin(a), scale * math.sin(a), scale * math.cos(a)]
    odx = ow / 2 - (m[0] * cx + m[1] * cy)
    ody = oh / 2 - (m[2] * cx + m[3] * cy)
    return " ".join(f"{v:.9f}" for v in m), f"{odx:.4f}", f"{ody:.4f}", ow, oh


def render(p, sources, tmp, out_dir):
    src, src_w, src_h = sources[p["source"]]
    matrix, odx, ody, ow, oh = window(p, src_w, src_h)
    base = os.path.join(tmp, f"p{p['index']}")
    geo, col, vig, lit, grain, noisy, final = (f"{base}-{k}.v" for k in
                                               ("geo", "col", "vig", "lit", "grain", "noisy", "final"))
    run("vips", "affine", "--oarea", f"0 0 {ow} {oh}", f"--odx={odx}", f"--ody={ody}",
        "--interpolate", "bicubic", "--", src, geo, matrix)
    gains = " ".join(f"{p['exposure'] * g:.5f}" for g in p["gains"])
    offsets = " ".join([f"{p['offset']:.3f}"] * 3)
    run("vips", "linear", "--", geo, col, gains, offsets)
    run("vips", "linear", "--", os.path.join(tmp, f"radius-{p['shape']}.v"), vig,
        f"{-p['vignette']:.5f}", "1")
    run("vips", "multiply", col, vig, lit)
    run("vips", "gaussnoise", grain, str(ow), str(oh), "--mean", "0", "--sigma", f"{p['sigma']:.4f}",
        "--seed", str(p["seed"]))
    run("vips", "add", lit, grain, noisy)
    rotation = STORED_ROTATION[p["orientation"]]
    run("vips", "cast", noisy, final, "uchar")
    if rotation:
        stored = f"{base}-stored.v"
        run("vips", "rot", final, stored, rotation)
        final = stored
    options = {"jpg": f"[Q={p['quality']},subsample-mode=on,strip]", "png": "[compression=6,strip]",
               "webp": f"[Q={p['quality']},strip]"}[p["fmt"]]
    out = os.path.join(out_dir, p["name"])
    run("vips", "copy", final, out + options)
    if p["fmt"] == "jpg":
        add_exif(out, p)
    for f in os.listdir(tmp):
        if f.startswith(f"p{p['index']}-"):
            os.unlink(os.path.join(tmp, f))
    return p


def fetch_sources(cache, tmp):
    os.makedirs(cache, exist_ok=True)
    debs = []
    for pkg in PACKAGES:
        have = sorted(f for f in os.listdir(cache) if f.startswith(pkg + "_") and f.endswith(".deb"))
        if not have:
            proc = subprocess.run(["apt-get", "download", pkg], cwd=cache, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
            have = sorted(f for f in os.listdir(cache) if f.startswith(pkg + "_") and f.endswith(".deb"))
            if proc.returncode != 0 or not have:
                sys.exit(f"make-corpus: apt-get download {pkg} failed (try apt-get update): {proc.stderr.strip()}")
        debs.append(have[-1])
        run("dpkg", "-x", os.path.join(cache, have[-1]), os.path.join(tmp, "pkg"))
    root = os.path.join(tmp, "pkg", "usr", "share", "backgrounds")
    sources = []
    for k, rel in enumerate(SOURCES):
        path = os.path.join(root, rel)
        if not os.path.isfile(path):
            sys.exit(f"make-corpus: {rel} is not in {' '.join(debs)}: the package changed; update SOURCES")
        srgb, flat = os.path.join(tmp, f"src{k}-srgb.v"), os.path.join(tmp, f"src{k}.v")
        run("vips", "colourspace", path, srgb, "srgb")
        if int(header(srgb, "bands")) == 4:
            run("vips", "flatten", srgb, flat)
        else:
            os.rename(srgb, flat)
        if os.path.exists(srgb):
            os.unlink(srgb)
        sources.append((flat, int(header(flat, "width")), int(header(flat, "height"))))
    return sources, debs


def make_radius_maps(tmp, shapes):
    """Per output shape, a float map of squared distance from the centre, 0 there, 1 in the corners."""
    for shape in shapes:
        w, h = SHAPES[shape]
        xy, norm, sq, out = (os.path.join(tmp, f"{k}-{shape}.v") for k in ("xy", "norm", "sq", "radius"))
        run("vips", "xyz", xy, str(w), str(h))
        run("vips", "linear", "--", xy, norm, f"{2 / w:.9f} {2 / h:.9f}", "-1 -1")
        run("vips", "multiply", norm, norm, sq)
        run("vips", "bandmean", sq, out)
        for f in (xy, norm, sq):
            os.unlink(f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("n", type=int)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--cache", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "out", "debs"),
                    help="where the downloaded .deb files are kept between runs")
    args = ap.parse_args()
    if args.n < 1:
        sys.exit("make-corpus: N must be >= 1")
    for tool in ("vips", "vipsheader", "apt-get", "dpkg"):
        if not shutil.which(tool):
            sys.exit(f"make-corpus: '{tool}' is missing (bench/install-deps.sh installs it)")
    os.makedirs(args.outdir, exist_ok=True)
    for f in os.listdir(args.outdir):
        if f.startswith("bench-") and f.rsplit(".", 1)[-1] in ("jpg", "png", "webp"):
            os.unlink(os.path.join(args.outdir, f))
    pictures = plan(args.n)
    with tempfile.TemporaryDirectory(prefix="bench-corpus.") as tmp:
        sources, debs = fetch_sources(args.cache, tmp)
        make_radius_maps(tmp, sorted({p["shape"] for p in pictures}))
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            for p in pool.map(lambda p: render(p, sources, tmp, args.outdir), pictures):
                pass
    sums, rows, total = [], [], 0
    for p in pictures:
        path = os.path.join(args.outdir, p["name"])
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        size = os.path.getsize(path)
        total += size
        sums.append(f"{digest}  {p['name']}\n")
        w, h = header(path, "width"), header(path, "height")
        rows.append(f"{p['name']}\t{p['fmt']}\t{w}x{h}\t{p['orientation']}\t{p['quality']}\t"
                    f"{SOURCES[p['source']]}\t{size}\n")
    with open(os.path.join(args.outdir, "SHA256SUMS"), "w") as f:
        f.writelines(sums)
    with open(os.path.join(args.outdir, "corpus.tsv"), "w") as f:
        f.write("name\tformat\tstored_size\torientation\tquality\tsource\tbytes\n")
        f.writelines(rows)
    counts = {k: sum(p["fmt"] == k for p in pictures) for k in ("jpg", "png", "webp")}
    print(f"make-corpus: {args.n} pictures in {args.outdir} (jpg {counts['jpg']}, png {counts['png']}, "
          f"webp {counts['webp']}; {total / 2**20:.1f} MiB) from {', '.join(debs)}, vips {run('vips', '--version').strip()}")


if __name__ == "__main__":
    main()
