"""Benchmark: de-identification speed and memory against the usual tools, in one run.

Builds (once, cached in ``bench/out/``) a batch of real-camera photos of 12 MP and more from the
corpus in ``../shared/corpus``: its large phone and DSLR JPEGs and iPhone/Nokia HEICs, upscaled where
needed to 12 MP (phones) or 24 MP (DSLRs), each copy given a small unique mark so every photo has its
own pixels, and each keeping its camera's real metadata (the original APP segments, EXIF thumbnail,
orientation, GPS, trailer; EXIF/XMP/ICC for HEIC). Then times, on that batch:

* ``assess randomize`` end to end (ingest, de-identification, blinding, leak audit), on the whole
  batch and on its first half (through a manifest); with ``--text on,off`` once with the search
  for text in the frame (``[pixels] text = "mask"``: searched and masked, since some corpus photos
  show text) and once without (``"off"``), to time what the search costs;
* ``assess.deid.prepare_files`` alone with the study defaults (the pixel pipeline);
* ``exiftool -all=`` on a copy of the batch;
* ``mogrify -auto-orient -strip -format jpg`` (ImageMagick);
* a plain single-process Pillow loop: open, ``ImageOps.exif_transpose``, save as JPEG quality 90.

Each runs in its own process; a sampler reads ``/proc`` every 20 ms and records the peak resident
memory of the whole process tree (RSS summed over processes, and PSS, which counts shared pages
once). Prints images/s, peak memory and the ratios, and the pipeline's peak at half the batch to show
that memory does not grow with the batch.

Usage::

    python bench/deid.py --n 200
    python bench/deid.py --n 60 --text on,off --repeat 3 --skip exiftool,mogrify,pillow,half
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import TreeSampler  # noqa: E402

# (corpus file, long edge of the batch copy, JPEG subsampling of the "camera")
JPEG_BASES = [
    ("mxi__Canon_EOS_5D.jpg", 6000, 1),  # DSLR, 24 MP
    ("mxi__Canon_EOS-1D_Mark_III_via_Adobe_Lightroom.jpg", 6000, 1),  # DSLR, 24 MP, XMP/IPTC/ICC
    ("mxi__Apple_iPhone_6.jpg", 4032, 2),  # phones, 12 MP
    ("mxi__Apple_iPhone_4S.jpg", 4032, 2),  # stored sideways, orientation 6
    ("mxi__Samsung_GT-I9505_Galaxy_S4.jpg", 4640, 2),
    ("mxi__Sony_D5403_Xperia_Z2.jpg", 4032, 2),
    ("ianare__HMD_Nokia_8.3_5G.jpg", 5320, 2),
    ("ianare__iphone_hdr_YES.jpg", 4032, 2),
    ("ianare__jolla.jpg", 4032, 2),
    ("mxi__Nikon_E995_iptc.jpg", 4032, 2),  # preview image after EOI
]
HEIC_BASES = ["mxi__IMG_1034.heic", "ianare__iphone_13_pro_max.HEIC", "mxi__exif-at-eof.heic",
              "ianare__HMD_Nokia_8.3_5G.heif"]
HEIC_SHARE = 10  # one photo in ten is a HEIC


# --------------------------------------------------------------------------- the batch


def _app_segments(data: bytes) -> tuple[bytes, bytes]:
    """The APPn/COM segments after SOI, and any bytes after EOI, of a JPEG."""
    i, head = 2, b""
    while data[i] == 0xFF and (0xE0 <= data[i + 1] <= 0xEF or data[i + 1] == 0xFE):
        length = int.from_bytes(data[i + 2:i + 4], "big")
        head += data[i:i + 2 + length]
        i += 2 + length
    from assess.audit import walk_jpeg

    end = walk_jpeg(data).end or len(data)
    return head, data[end:]


def _mark(img, k: int):
    """A small unique patch in a corner, so that no two batch photos share their pixels."""
    from PIL import ImageDraw

    draw = ImageDraw.Draw(img)
    x, y = 16 + (k % 37) * 3, 16 + (k // 37) % 37 * 3
    draw.rectangle((x, y, x + 24, y + 24), fill=((k * 53) % 256, (k * 97) % 256, (k * 31) % 256))
    return img


def _make_jpegs(base: str, long_edge: int, subsampling: int, names: list[tuple[str, int]], folder: str) -> None:
    from PIL import Image

    names = [(name, uid) for name, uid in names if not (Path(folder) / name).exists()]
    if not names:
        return
    data = (CORPUS / base).read_bytes()
    head, trailer = _app_segments(data)
    with Image.open(io.BytesIO(data)) as im:
        scale = long_edge / max(im.size)
        big = im.convert("RGB").resize((round(im.width * scale), round(im.height * scale)),
                                       Image.Resampling.BICUBIC)
    for name, uid in names:
        buf = io.BytesIO()
        _mark(big.copy(), uid).save(buf, "JPEG", quality=92, subsampling=subsampling)
        new = buf.getvalue()
        dqt = new.index(b"\xff\xdb")
        part = Path(folder) / f".{name}.part"
        part.write_bytes(b"\xff\xd8" + head + new[dqt:] + trailer)
        part.rename(Path(folder) / name)


def _make_heics(base: str, names: list[tuple[str, int]], folder: str) -> None:
    import pillow_heif
    from PIL import Image

    names = [(name, uid) for name, uid in names if not (Path(folder) / name).exists()]
    if not names:
        return
    pillow_heif.register_heif_opener()
    with Image.open(CORPUS / base) as im:
        upright = im.convert("RGB")
        info = dict(im.info)
    orientation = info.get("original_orientation") or 1
    stored = upright
    if orientation == 6:  # store it sideways again, as the phone did
        stored = upright.transpose(Image.Transpose.ROTATE_90)
    for name, uid in names:
        heif = pillow_heif.from_pillow(_mark(stored.copy(), uid))
        for key in ("exif", "xmp", "icc_profile"):
            if info.get(key):
                heif.info[key] = info[key]
        if orientation == 6 and info.get("exif"):
            heif.info["exif"] = _with_orientation(info["exif"], 6)
        part = Path(folder) / f".{name}.part"
        heif.save(part, format="HEIF", quality=80, enc_params={"preset": "ultrafast"})
        part.rename(Path(folder) / name)


def _with_orientation(exif: bytes, value: int) -> bytes:
    from PIL import Image

    e = Image.Exif()
    e.load(exif)
    e[0x0112] = value
    return e.tobytes()


def build_batch(n: int) -> Path:
    """``bench/out/batch-<n>/``: n photos named for ``assess randomize`` and a study.toml."""
    folder = OUT / f"batch-{n}"
    done = folder / ".complete"
    if done.exists():
        return folder
    if not (CORPUS / "MANIFEST.md").exists():
        sys.exit(f"the corpus is not at {CORPUS}")
    folder.mkdir(parents=True, exist_ok=True)  # resumes an interrupted build
    regions = ["face", "neck", "hands"]
    slots = []
    k = 0
    while len(slots) < n:
        for region in regions:
            for tp in ("baseline", "month12"):
                slots.append((f"P{k // 3 + 1:03d}", tp, region))
        k += 3
    slots = slots[:n]
    jpeg_names: dict[int, list[tuple[str, int]]] = {i: [] for i in range(len(JPEG_BASES))}
    heic_names: dict[int, list[tuple[str, int]]] = {i: [] for i in range(len(HEIC_BASES))}
    # which corpus photo fills which slot is shuffled, so that camera (and so file size) does not
    # follow the timepoint: the set must pass the leak audit to be timed end to end
    order = list(range(len(slots)))
    random.Random(n).shuffle(order)
    for i, slot in enumerate(order):
        participant, tp, region = slots[slot]
        stem = f"{participant}_{tp}_{region}"
        if i % HEIC_SHARE == HEIC_SHARE - 1:
            heic_names[i % len(HEIC_BASES)].append((stem + ".heic", i))
        else:
            jpeg_names[i % len(JPEG_BASES)].append((stem + ".jpg", i))
    print(f"building the batch in {folder} (once) …", file=sys.stderr, flush=True)
    with ProcessPoolExecutor(2) as pool:
        futs = [pool.submit(_make_jpegs, *JPEG_BASES[i], names, str(folder))
                for i, names in jpeg_names.items() if names]
        for i, names in heic_names.items():
            for start in range(0, len(names), 3):
                futs.append(pool.submit(_make_heics, HEIC_BASES[i], names[start:start + 3], str(folder)))
        for f in futs:
            f.result()
    (folder / "study.toml").write_text(
        '[study]\nid = "BENCH"\ntimepoints = ["baseline", "month12"]\n'
        '[regions.face]\nscale = "wsrs"\n[regions.neck]\nscale = "wsrs"\n[regions.hands]\nscale = "merz-hand"\n'
        '[blinding]\nraters = ["derm1"]\nrepeat_fraction = 0.0\nseed = 1\n')
    done.touch()
    return folder


def photos_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".heic"))


# --------------------------------------------------------------------------- measuring


def _cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def measure(name: str, cmd: list[str], n: int, cwd: Path | None = None) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    cpu_before = _cpu()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with TreeSampler(proc.pid) as sampler:
        out, err = proc.communicate()
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{name} failed ({proc.returncode}):\n{err[-3000:]}")
    child_max = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    cpu = _cpu() - cpu_before
    return {"name": name, "n": n, "seconds": seconds, "ips": n / seconds, "cpu": cpu / n,
            "rss": sampler.peak_rss,
            "pss": sampler.peak_pss, "procs": sampler.max_procs, "at_peak": sampler.at_peak,
            "largest_process_kb": child_max if child_max > before else None, "stdout": out}


# --------------------------------------------------------------------------- the contenders


def _normalize(long_edge: int | None, display: int | None):
    from dataclasses import replace

    from assess.study import Normalize

    norm = Normalize()
    if long_edge:
        norm = replace(norm, long_edge=long_edge, display_long_edge=min(display or norm.display_long_edge,
                                                                       long_edge))
    if display:
        norm = replace(norm, display_long_edge=display)
    return norm


def run_prepare(batch: str, out: str, n: int, workers: int | None, long_edge: int | None,
                display: int | None) -> None:
    """Child process: prepare_files on the first n photos with the study defaults."""
    from assess.deid import Spec, prepare_files

    spec = Spec.from_normalize(_normalize(long_edge, display), portrait=False)
    photos = photos_of(Path(batch))[:n]
    jobs = [(p, Path(out) / "full" / f"{i}.jpg", Path(out) / "display" / f"{i}.jpg", spec)
            for i, p in enumerate(photos)]
    prepare_files(jobs, workers=workers)


def run_randomize(batch: str, out: str, workers: int | None, long_edge: int | None,
                  display: int | None, n: int | None = None, text: str | None = None) -> None:
    """Child process: the whole ``assess randomize`` (ingest, deid, blind, audit); on the first
    ``n`` photos only (listed in a manifest) when ``n`` is given."""
    from dataclasses import replace

    from assess.blind import randomize
    from assess.ingest import parse_name
    from assess.study import load_study

    study = load_study(Path(batch) / "study.toml")
    study = replace(study, normalize=_normalize(long_edge, display))
    # the batch fills many slots from one corpus photo (each copy marked): its visits are
    # "distinct" photos for the near-duplicate check, as a study would list them
    names: dict[tuple[str, str], list[str]] = {}
    for p in photos_of(Path(batch)):
        participant, _, region, _ = parse_name(p.name)
        names.setdefault((participant, region), []).append(p.name)
    pairs = tuple((a, b) for group in names.values() for i, a in enumerate(group)
                  for b in group[i + 1:])
    study = replace(study, photos=replace(study.photos, distinct=study.photos.distinct + pairs))
    if text:  # "on": searched and masked; "off": not searched
        study = replace(study, pixels=replace(study.pixels, text="mask" if text == "on" else "off"))
    manifest = None
    if n is not None:
        manifest = Path(out) / "manifest.csv"
        rows = ["participant,timepoint,region,file"]
        for p in photos_of(Path(batch))[:n]:
            participant, tp, region, _ = parse_name(p.name)
            rows.append(f"{participant},{tp},{region},{p.name}")
        manifest.write_text("\n".join(rows) + "\n")
    randomize(study, batch, out, set_id="bench", workers=workers, manifest=manifest)


def run_pillow(batch: str, out: str, n: int) -> None:
    """Child process: the plain single-process Pillow loop."""
    import pillow_heif
    from PIL import Image, ImageOps

    pillow_heif.register_heif_opener()
    for p in photos_of(Path(batch))[:n]:
        with Image.open(p) as im:
            upright = ImageOps.exif_transpose(im)
            upright.convert("RGB").save(Path(out) / f"{p.stem}.jpg", "JPEG", quality=90)


def _median(runs: list[dict]) -> dict:
    """One row for the runs of one setting: the median CPU time and wall time, the highest
    memory."""
    import statistics

    row = dict(max(runs, key=lambda r: r["pss"]))
    row["cpu"] = statistics.median(r["cpu"] for r in runs)
    row["seconds"] = statistics.median(r["seconds"] for r in runs)
    row["ips"] = row["n"] / row["seconds"]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200, help="photos in the batch (default 200)")
    ap.add_argument("--workers", type=int, default=None, help="processes for assess (default: all cores)")
    ap.add_argument("--long-edge", type=int, default=None, help="override the study default long edge")
    ap.add_argument("--display", type=int, default=None, help="override the study default display long edge")
    ap.add_argument("--skip", default="", help="comma-separated contenders to skip: "
                    "randomize,exiftool,mogrify,pillow,half")
    ap.add_argument("--text", default="", help="comma-separated text search settings to time "
                    "randomize with, e.g. on,off (on: [pixels] text = \"mask\"; default: the "
                    "batch study's own)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each randomize setting, taken "
                    "in turn; the table shows each setting's median (default 1)")
    ap.add_argument("--text-mode", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "prepare":
            run_prepare(rest[0], rest[1], int(rest[2]), args.workers, args.long_edge, args.display)
        elif kind == "randomize":
            run_randomize(rest[0], rest[1], args.workers, args.long_edge, args.display,
                          int(rest[2]) if len(rest) > 2 else None, args.text_mode)
        elif kind == "pillow":
            run_pillow(rest[0], rest[1], int(rest[2]))
        return

    skip = set(filter(None, args.skip.split(",")))
    batch = build_batch(args.n)
    photos = photos_of(batch)
    from PIL import Image
    import pillow_heif

    pillow_heif.register_heif_opener()
    mps = []
    for p in photos:
        with Image.open(p) as im:
            mps.append(im.width * im.height / 1e6)
    size = sum(p.stat().st_size for p in photos)
    heic = sum(p.suffix == ".heic" for p in photos)
    print(f"batch: {len(photos)} photos ({len(photos) - heic} JPEG, {heic} HEIC), "
          f"{min(mps):.1f}–{max(mps):.1f} MP (mean {sum(mps) / len(mps):.1f}), {size / 1e9:.2f} GB; "
          f"{os.cpu_count()} cores", flush=True)

    me = [sys.executable, str(Path(__file__).resolve())]
    wflag = ["--workers", str(args.workers)] if args.workers else []
    if args.long_edge:
        wflag += ["--long-edge", str(args.long_edge)]
    if args.display:
        wflag += ["--display", str(args.display)]
    norm = _normalize(args.long_edge, args.display)
    print(f"load average at the start: {os.getloadavg()[0]:.1f}")
    print(f"assess settings: long edge {norm.long_edge}, display {norm.display_long_edge}, "
          f"quality {norm.quality}, aspect {norm.aspect[0]}:{norm.aspect[1]}, fit {norm.fit}")
    rows = []
    with tempfile.TemporaryDirectory(dir=OUT) as tmp:
        tmp = Path(tmp)

        def fresh(name: str) -> Path:
            path = tmp / name
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir()
            return path

        rand_half = None
        texts = [t for t in args.text.split(",") if t] or [None]
        pairs: list[tuple[dict, ...]] = []
        if "randomize" not in skip:
            runs: dict[str, list[dict]] = {}
            for _ in range(args.repeat):  # the settings in turn, so a busy spell hits them alike
                for text in texts:
                    label = "assess randomize (end to end)" if text is None else \
                        f"assess randomize (text {text})"
                    flag = [] if text is None else ["--text-mode", text]
                    runs.setdefault(label, []).append(
                        measure(label, me + wflag + flag + ["--child", "randomize", str(batch),
                                                            str(fresh("rand"))], len(photos)))
            rows += [_median(rs) for rs in runs.values()]
            pairs = list(zip(*runs.values()))
            if "half" not in skip:
                rand_half = measure("assess randomize (half batch)",
                                    me + wflag + ["--child", "randomize", str(batch), str(fresh("rand")),
                                                  str(len(photos) // 2)], len(photos) // 2)
            fresh("rand")
        ours = measure("assess deid.prepare_files", me + wflag + ["--child", "prepare", str(batch),
                                                                  str(fresh("prep")), str(len(photos))],
                       len(photos))
        rows.append(ours)
        half = None
        if "half" not in skip:
            half = measure("assess deid.prepare_files (half batch)",
                           me + wflag + ["--child", "prepare", str(batch), str(fresh("prep")),
                                         str(len(photos) // 2)], len(photos) // 2)
        fresh("prep")
        if "exiftool" not in skip and shutil.which("exiftool"):
            copy = fresh("exif")
            for p in photos:
                shutil.copyfile(p, copy / p.name)
            rows.append(measure("exiftool -all=", ["exiftool", "-q", "-q", "-all=", "-overwrite_original",
                                                   str(copy)], len(photos)))
            shutil.rmtree(copy)
        mog = None
        if "mogrify" not in skip and shutil.which("mogrify"):
            mog = measure("mogrify -auto-orient -strip", ["mogrify", "-path", str(fresh("mog")),
                                                          "-auto-orient", "-strip", "-format", "jpg",
                                                          *[str(p) for p in photos]], len(photos))
            rows.append(mog)
            shutil.rmtree(tmp / "mog")
        pil = None
        if "pillow" not in skip:
            pil = measure("Pillow loop (1 process)", me + ["--child", "pillow", str(batch), str(fresh("pil")),
                                                           str(len(photos))], len(photos))
            rows.append(pil)

    load = os.getloadavg()[0]
    print(f"\n{'':38}{'images/s':>9}{'seconds':>9}{'CPU s/img':>10}{'peak RSS':>11}{'peak PSS':>11}"
          f"{'procs':>7}")
    for r in rows + [h for h in (rand_half, half) if h]:
        print(f"{r['name']:38}{r['ips']:9.2f}{r['seconds']:9.1f}{r['cpu']:10.3f}{r['rss'] / 2**20:9.0f}MB"
              f"{r['pss'] / 2**20:9.0f}MB{r['procs']:7d}")
    print(f"(load average at the end: {load:.1f} on {os.cpu_count()} cores; images/s needs an idle "
          "machine, CPU s/img does not)")
    print()
    if mog:
        print(f"assess / mogrify     = {ours['ips'] / mog['ips']:.2f}x by wall time, "
              f"{mog['cpu'] / ours['cpu']:.2f}x by CPU time  (target >= 3)")
    if pil:
        print(f"assess / Pillow loop = {ours['ips'] / pil['ips']:.2f}x by wall time, "
              f"{pil['cpu'] / ours['cpu']:.2f}x by CPU time  (target >= 1.7)")
    by_text = {r["name"]: r for r in rows if r["name"].startswith("assess randomize (text")}
    if "assess randomize (text on)" in by_text and "assess randomize (text off)" in by_text:
        on, off = by_text["assess randomize (text on)"], by_text["assess randomize (text off)"]
        print(f"text search: randomize CPU {on['cpu']:.3f} s/img with it, {off['cpu']:.3f} without "
              f"= +{100 * (on['cpu'] / off['cpu'] - 1):.0f}% (target <= +30%); wall "
              f"+{100 * (off['ips'] / on['ips'] - 1):.0f}%"
              + (f" (medians of {args.repeat} runs each)" if args.repeat > 1 else ""))
        if args.repeat > 1:
            names = [r["name"] for r in pairs[0]]
            i_on, i_off = names.index(on["name"]), names.index(off["name"])
            print("  run by run, CPU: " + ", ".join(
                f"+{100 * (p[i_on]['cpu'] / p[i_off]['cpu'] - 1):.0f}%" for p in pairs)
                  + "; wall: " + ", ".join(
                f"+{100 * (p[i_on]['seconds'] / p[i_off]['seconds'] - 1):.0f}%" for p in pairs))
    rand = next((r for r in rows if r["name"].startswith("assess randomize")), None)
    if rand and mog and pil:
        print(f"randomize end to end / mogrify = {rand['ips'] / mog['ips']:.2f}x, "
              f"/ Pillow loop = {rand['ips'] / pil['ips']:.2f}x")
    if half:
        print(f"assess peak memory (PSS): {half['pss'] / 2**20:.0f} MB at n={half['n']}, "
              f"{ours['pss'] / 2**20:.0f} MB at n={ours['n']} (target <= 300 MB, flat); "
              f"RSS {half['rss'] / 2**20:.0f} / {ours['rss'] / 2**20:.0f} MB")
    if rand and rand_half:
        print(f"randomize peak memory (PSS): {rand_half['pss'] / 2**20:.0f} MB at n={rand_half['n']}, "
              f"{rand['pss'] / 2**20:.0f} MB at n={rand['n']} (target <= 300 MB, flat); "
              f"RSS {rand_half['rss'] / 2**20:.0f} / {rand['rss'] / 2**20:.0f} MB")
    for r in (rand, ours):
        if r and r.get("at_peak"):
            parts = ", ".join(f"{name} {share / 2**20:.0f}"
                              for name, share in sorted(r["at_peak"], key=lambda p: -p[1]))
            print(f"{r['name']} at its peak, PSS MB by process: {parts}")


if __name__ == "__main__":
    main()
