"""The pixel pipeline: nothing but pixels leaves it, upright, in sRGB, one encoding for every camera."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageCms, ImageDraw, ImageStat, PngImagePlugin

from assess.audit import walk_jpeg
from assess.deid import (
    BACKGROUND,
    DISGUISE_SHARE,
    disguise,
    encode_jpeg,
    equalize_sizes,
    JFIF_APP0,
    MAX_PIXELS,
    DeidError,
    Spec,
    padding_fraction,
    prepare_file,
    prepare_files,
    probe,
)

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
CORPUS_FILES = sorted(p.name for p in CORPUS.glob("*") if p.suffix.lower() in
                      {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".heic", ".heif", ".mpo"})
SMALL = Spec(long_edge=640, display_long_edge=320, quality=90, aspect=(4, 3), fit="pad", portrait=False)
EXIFTOOL_ALLOWED = {
    "ExifTool": {"ExifToolVersion"},
    "File": {"FileType", "FileTypeExtension", "MIMEType", "ImageWidth", "ImageHeight", "EncodingProcess",
             "BitsPerSample", "ColorComponents", "YCbCrSubSampling"},
    "JFIF": {"JFIFVersion", "ResolutionUnit", "XResolution", "YResolution"},
    "Composite": {"ImageSize", "Megapixels"},
}


# --------------------------------------------------------------------------- helpers


def scene(size=(400, 300)) -> Image.Image:
    """An asymmetric picture: every flip and rotation of it looks different."""
    w, h = size
    img = Image.new("RGB", size, (30, 60, 90))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, w // 3, h // 4), fill=(230, 40, 40))  # red block top left
    draw.ellipse((w // 2, h // 2, w - 10, h - 10), fill=(40, 220, 60))  # green disc bottom right
    draw.polygon([(w - 40, 10), (w - 10, 10), (w - 10, h // 3)], fill=(250, 250, 60))
    return img


def exif_bytes(orientation: int = 1, make: str = "Canon", model: str = "EOS 5D", gps: bool = False,
               description: str = "") -> bytes:
    exif = Image.Exif()
    exif[0x010F] = make
    exif[0x0110] = model
    exif[0x0112] = orientation
    exif[0x0132] = "2026:03:14 09:26:53"
    if description:
        exif[0x010E] = description
    if gps:
        g = exif.get_ifd(0x8825)
        g[1], g[2], g[3], g[4] = "N", (48.0, 8.0, 30.5), "E", (11.0, 34.0, 12.25)
    return exif.tobytes()


def mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB").resize(a.size))
    return sum(ImageStat.Stat(diff).mean) / 3


def segments_before_scan(data: bytes) -> bytes:
    walk = walk_jpeg(data)
    return data[:walk.scans[0][0]]


def swapped_primaries_profile() -> bytes:
    """A valid ICC v2 RGB matrix/TRC profile whose red and blue colorants are swapped.

    Pure red in this colour space is blue in sRGB, so a conversion is impossible to miss.
    """
    def s15(v: float) -> bytes:
        return struct.pack(">i", round(v * 65536))

    def xyz(x, y, z) -> bytes:
        return b"XYZ " + b"\0" * 4 + s15(x) + s15(y) + s15(z)

    def desc(text: str) -> bytes:
        t = text.encode("ascii") + b"\0"
        return (b"desc" + b"\0" * 4 + struct.pack(">I", len(t)) + t + b"\0" * 4 + b"\0" * 4
                + b"\0" * 2 + b"\0" + b"\0" * 67)

    gamma = b"curv" + b"\0" * 4 + struct.pack(">I", 1) + struct.pack(">H", 0x0233) + b"\0\0"  # 2.2
    # sRGB (D50-adapted) colorants, red and blue exchanged
    red, green, blue = (0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141)
    tags = [(b"desc", desc("swapped primaries")), (b"cprt", b"text" + b"\0" * 4 + b"none\0\0\0\0"),
            (b"wtpt", xyz(0.9642, 1.0, 0.8249)), (b"rXYZ", xyz(*blue)), (b"gXYZ", xyz(*green)),
            (b"bXYZ", xyz(*red)), (b"rTRC", gamma), (b"gTRC", gamma), (b"bTRC", gamma)]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        while len(data) % 4:
            data += b"\0"
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (struct.pack(">I", size) + b"none" + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ "
              + struct.pack(">6H", 2026, 1, 1, 0, 0, 0) + b"acsp" + b"APPL" + b"\0" * 4 + b"none"
              + b"none" + b"\0" * 8 + struct.pack(">I", 0) + s15(0.9642) + s15(1.0) + s15(0.8249)
              + b"none" + b"\0" * 44)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width × height`` (no pixel data needed to be refused)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    idat = zlib.compress(b"\0" * 16)
    chunk += struct.pack(">I", len(idat)) + b"IDAT" + idat + struct.pack(">I", zlib.crc32(b"IDAT" + idat))
    return b"\x89PNG\r\n\x1a\n" + chunk + struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))


def run(src: Path, tmp: Path, spec: Spec = SMALL):
    return prepare_file(src, tmp / "out" / "full.jpg", tmp / "out" / "display.jpg", spec)


# --------------------------------------------------------------------------- the real-camera corpus


@pytest.fixture(scope="session")
def corpus_outputs(corpus_dir, tmp_path_factory):
    """Every corpus photo through the pipeline once (in parallel), with exiftool's view of each."""
    out = tmp_path_factory.mktemp("corpus-blinded")
    jobs = [(corpus_dir / name, out / "full" / f"{i:02d}.jpg", out / "display" / f"{i:02d}.jpg", SMALL)
            for i, name in enumerate(CORPUS_FILES)]
    results = prepare_files(jobs, workers=2)
    return {name: (job, res) for name, job, res in zip(CORPUS_FILES, jobs, results)}


@pytest.fixture(scope="session")
def corpus_exiftool(corpus_outputs, exiftool):
    files = [str(p) for job, _ in corpus_outputs.values() for p in job[1:3]]
    proc = subprocess.run([exiftool, "-a", "-G1", "-s", "-j", *files], capture_output=True, text=True,
                          check=True)
    return {rec["SourceFile"]: rec for rec in json.loads(proc.stdout)}


@pytest.mark.corpus
@pytest.mark.parametrize("name", CORPUS_FILES)
def test_every_corpus_photo_comes_out_with_nothing_but_basic_jpeg_tags_per_exiftool(
        name, corpus_outputs, corpus_exiftool):
    job, _ = corpus_outputs[name]
    for written in job[1:3]:
        record = corpus_exiftool[str(written)]
        extra = []
        for tag in record:
            group, _, tag_name = tag.partition(":")
            if tag == "SourceFile" or group == "System" or tag_name in EXIFTOOL_ALLOWED.get(group, ()):
                continue
            extra.append(tag)
        assert extra == [], f"{name} → {written.name}: {extra}"


@pytest.mark.corpus
@pytest.mark.parametrize("name", CORPUS_FILES)
def test_every_corpus_photo_comes_out_with_only_baseline_segments_and_no_trailer(name, corpus_outputs):
    job, result = corpus_outputs[name]
    for written, size in ((job[1], SMALL.canvas), (job[2], SMALL.display_canvas)):
        data = written.read_bytes()
        walk = walk_jpeg(data)
        assert walk.problems == []
        assert walk.end == len(data)
        assert walk.layout == "SOI APP0 DQT DQT SOF0 DHT DHT DHT DHT SOS EOI"
        assert walk.size == size
    assert result.size == SMALL.canvas


@pytest.mark.corpus
def test_every_corpus_photo_gets_the_same_header_bytes_whatever_the_camera(corpus_outputs):
    headers = {segments_before_scan(job[1].read_bytes()) for job, _ in corpus_outputs.values()}
    assert len(headers) == 1


@pytest.mark.corpus
@pytest.mark.parametrize("n", range(2, 9))
def test_the_corpus_orientation_fixtures_all_match_landscape_1(n, corpus_dir, tmp_path):
    reference = run(corpus_dir / "ianare__landscape_1.jpg", tmp_path / "ref")
    result = run(corpus_dir / f"ianare__landscape_{n}.jpg", tmp_path / "n")
    ref = Image.open(tmp_path / "ref" / "out" / "full.jpg")
    out = Image.open(tmp_path / "n" / "out" / "full.jpg")
    raw = Image.open(corpus_dir / f"ianare__landscape_{n}.jpg")
    assert mean_abs_diff(ref, out) < 6
    assert mean_abs_diff(ref, raw) > 20  # the stored pixels alone would not match
    assert result.pixel_sha256 != reference.pixel_sha256  # other file, other decoded pixels


@pytest.mark.corpus
def test_the_corpus_portrait_photo_is_turned_upright(corpus_dir, tmp_path):
    info = probe(corpus_dir / "ianare__portrait_6.jpg")
    assert (info.width, info.height, info.orientation) == (450, 600, 6)
    portrait = Spec(640, 320, 90, (4, 3), "pad", portrait=True)
    run(corpus_dir / "ianare__portrait_6.jpg", tmp_path, portrait)
    assert padding_fraction(tmp_path / "out" / "full.jpg") < 0.02  # fills an upright canvas
    run(corpus_dir / "ianare__portrait_6.jpg", tmp_path / "land", SMALL)
    assert padding_fraction(tmp_path / "land" / "out" / "full.jpg") > 0.4  # bars beside it on a wide one


@pytest.mark.corpus
def test_a_corpus_iphone_heic_with_rotation_comes_out_upright_once(corpus_dir, tmp_path):
    src = corpus_dir / "ianare__iphone_13_pro_max.HEIC"  # stored 4032x3024, rotated 90° by the file
    info = probe(src)
    assert (info.width, info.height, info.format) == (3024, 4032, "HEIF")
    run(src, tmp_path, Spec(640, 320, 90, (4, 3), "pad", portrait=True))
    assert padding_fraction(tmp_path / "out" / "full.jpg") < 0.02


@pytest.mark.corpus
def test_a_corpus_mpo_gives_its_first_frame_only(corpus_dir, tmp_path):
    src = corpus_dir / "pillow__frozenpond.mpo"
    run(src, tmp_path)
    with Image.open(src) as mpo:
        first = mpo.convert("RGB")
    out = Image.open(tmp_path / "out" / "full.jpg")
    assert mean_abs_diff(out, first.resize(out.size)) < 8
    assert walk_jpeg((tmp_path / "out" / "full.jpg").read_bytes()).end == (tmp_path / "out" / "full.jpg").stat().st_size


# --------------------------------------------------------------------------- orientation, made in code


@pytest.mark.parametrize("orientation", range(1, 9))
def test_each_exif_orientation_is_applied_exactly_once(orientation, tmp_path):
    upright = scene()
    stored = upright
    # store the pixels as a camera held that way would, so that applying the tag restores them
    inverse = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
               4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
               6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270}
    if orientation != 1:
        stored = upright.transpose(inverse[orientation])
    src = tmp_path / "photo.jpg"
    stored.save(src, quality=95, exif=exif_bytes(orientation))
    assert (probe(src).width, probe(src).height) == upright.size
    run(src, tmp_path, Spec(400, 200, 95, (4, 3), "pad", False))
    out = Image.open(tmp_path / "out" / "full.jpg")
    assert mean_abs_diff(out, upright) < 4


def test_an_xmp_orientation_in_a_png_is_applied(tmp_path):
    upright = scene()
    src = tmp_path / "photo.png"
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", '<x:xmpmeta><rdf:Description tiff:Orientation="3"/></x:xmpmeta>')
    upright.rotate(180).save(src, pnginfo=info)
    run(src, tmp_path, Spec(400, 200, 95, (4, 3), "pad", False))
    assert mean_abs_diff(Image.open(tmp_path / "out" / "full.jpg"), upright) < 4


def test_a_heic_made_with_a_rotation_comes_out_upright_and_not_from_its_thumbnail(tmp_path, monkeypatch):
    pillow_heif = pytest.importorskip("pillow_heif")
    upright = scene((480, 360))
    draw = ImageDraw.Draw(upright)
    for x in range(0, 480, 4):  # fine stripes: a 96-pixel thumbnail cannot hold them
        draw.line((x, 200, x, 260), fill=(255, 255, 255), width=2)
    src = tmp_path / "phone.heic"
    # pillow-heif turns an EXIF orientation into the HEIF irot transform when saving
    heif = pillow_heif.from_pillow(upright.transpose(Image.Transpose.ROTATE_90))
    heif.info["exif"] = exif_bytes(6, "Apple", "iPhone 15", gps=True)
    heif.info["thumbnails"] = [96]
    heif.save(src, quality=95)
    monkeypatch.setattr(pillow_heif.options, "THUMBNAILS", True)
    assert pillow_heif.open_heif(src).info["thumbnails"]  # the file really carries one
    monkeypatch.undo()
    info = probe(src)
    assert (info.width, info.height, info.format) == (480, 360, "HEIF")
    run(src, tmp_path, Spec(480, 240, 95, (4, 3), "pad", False))
    data = (tmp_path / "out" / "full.jpg").read_bytes()
    assert walk_jpeg(data).problems == []
    assert b"iPhone" not in data and b"Apple" not in data
    out = Image.open(io.BytesIO(data))
    from_thumbnail = upright.resize((96, 72)).resize(upright.size)
    assert mean_abs_diff(out, upright) < 3 < mean_abs_diff(from_thumbnail, upright)


def test_a_large_heic_reduced_while_decoding_gives_the_same_pixel_hash_as_a_full_decode(tmp_path):
    pytest.importorskip("pillow_heif")
    src = tmp_path / "phone.heic"
    scene((1280, 960)).save(src, quality=90)
    reduced = run(src, tmp_path / "small", Spec(480, 240, 90, (4, 3), "pad", False))  # strips, 1/2
    whole = run(src, tmp_path / "large", Spec(1280, 640, 90, (4, 3), "pad", False))  # full decode
    assert reduced.pixel_sha256 == whole.pixel_sha256
    small = Image.open(tmp_path / "small" / "out" / "full.jpg")
    assert mean_abs_diff(small, Image.open(tmp_path / "large" / "out" / "full.jpg")) < 4


# --------------------------------------------------------------------------- colour and transparency


def test_an_embedded_non_srgb_profile_is_converted_to_srgb(tmp_path):
    profile = swapped_primaries_profile()
    ImageCms.ImageCmsProfile(io.BytesIO(profile))  # lcms accepts it
    src = tmp_path / "wide.jpg"
    Image.new("RGB", (320, 240), (220, 20, 20)).save(src, quality=95, icc_profile=profile)
    run(src, tmp_path, Spec(320, 160, 95, (4, 3), "pad", False))
    r, g, b = Image.open(tmp_path / "out" / "full.jpg").getpixel((160, 120))
    assert b > 150 and r < 80  # "red" in the swapped space is blue in sRGB
    assert walk_jpeg((tmp_path / "out" / "full.jpg").read_bytes()).problems == []


def test_an_embedded_srgb_profile_leaves_the_colours_as_they_are(tmp_path):
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = tmp_path / "srgb.jpg"
    Image.new("RGB", (320, 240), (220, 20, 20)).save(src, quality=95, icc_profile=srgb)
    run(src, tmp_path, Spec(320, 160, 95, (4, 3), "pad", False))
    r, g, b = Image.open(tmp_path / "out" / "full.jpg").getpixel((160, 120))
    assert r > 200 and b < 50


def test_transparent_pixels_come_out_neutral_grey(tmp_path):
    src = tmp_path / "cutout.png"
    img = Image.new("RGBA", (320, 240), (0, 0, 0, 0))
    ImageDraw.Draw(img).rectangle((100, 80, 220, 160), fill=(200, 30, 30, 255))
    img.save(src)
    run(src, tmp_path, Spec(320, 160, 95, (4, 3), "pad", False))
    out = Image.open(tmp_path / "out" / "full.jpg")
    assert all(abs(c - g) <= 3 for c, g in zip(out.getpixel((10, 10)), BACKGROUND))
    assert out.getpixel((160, 120))[0] > 180


def test_a_16_bit_greyscale_png_is_scaled_to_8_bits(tmp_path):
    src = tmp_path / "deep.png"
    Image.new("I;16", (320, 240), 40000).save(src)
    run(src, tmp_path, Spec(320, 160, 95, (4, 3), "pad", False))
    value = Image.open(tmp_path / "out" / "full.jpg").getpixel((160, 120))[0]
    assert abs(value - 40000 / 257) <= 3


# --------------------------------------------------------------------------- two cameras, one encoding


def camera_a(path: Path) -> Path:
    """A DSLR: 4:3, quality 97, 4:4:4, EXIF with GPS, upright."""
    scene((1600, 1200)).save(path, quality=97, subsampling=0,
                             exif=exif_bytes(1, "Canon", "EOS 5D Mark IV", gps=True))
    return path


def camera_b(path: Path) -> Path:
    """A phone: 16:9, quality 78, 4:2:0, another EXIF with GPS, stored sideways, comment, trailer."""
    buf = io.BytesIO()
    scene((1920, 1080)).transpose(Image.Transpose.ROTATE_90).save(
        buf, "JPEG", quality=78, subsampling=2, exif=exif_bytes(6, "Apple", "iPhone 13 Pro", gps=True),
        comment=b"P07 month12")
    path.write_bytes(buf.getvalue() + b"\0\0Apple trailer P07")
    return path


def test_two_cameras_give_the_same_dimensions_tables_subsampling_and_header_bytes(tmp_path):
    spec = Spec(960, 480, 90, (4, 3), "pad", False)
    a = prepare_file(camera_a(tmp_path / "a.jpg"), tmp_path / "a" / "f.jpg", tmp_path / "a" / "d.jpg", spec)
    b = prepare_file(camera_b(tmp_path / "b.jpg"), tmp_path / "b" / "f.jpg", tmp_path / "b" / "d.jpg", spec)
    assert a.size == b.size == (960, 720) and a.display_size == b.display_size == (480, 360)
    for copy in ("f.jpg", "d.jpg"):
        da, db = (tmp_path / "a" / copy).read_bytes(), (tmp_path / "b" / copy).read_bytes()
        wa, wb = walk_jpeg(da), walk_jpeg(db)
        assert wa.dqt == wb.dqt and wa.sampling == wb.sampling == ((2, 2), (1, 1), (1, 1))
        assert segments_before_scan(da) == segments_before_scan(db)
        assert wa.problems == wb.problems == []
        assert da[2:2 + len(JFIF_APP0)] == JFIF_APP0
        for secret in (b"Canon", b"Apple", b"P07", b"month12", b"2026:03:14"):
            assert secret not in da and secret not in db


def test_crop_fills_the_canvas_and_pad_keeps_the_whole_photo(tmp_path):
    src = camera_b(tmp_path / "b.jpg")
    run(src, tmp_path / "pad", Spec(640, 320, 90, (4, 3), "pad", False))
    run(src, tmp_path / "crop", Spec(640, 320, 90, (4, 3), "crop", False))
    assert padding_fraction(tmp_path / "pad" / "out" / "full.jpg") > 0.2
    assert padding_fraction(tmp_path / "crop" / "out" / "full.jpg") < 0.02


def test_tiff_text_tags_do_not_survive(tmp_path):
    src = tmp_path / "scan.tif"
    scene().save(src, tiffinfo={270: "P07 baseline face", 315: "Dr Smith", 305: "ScanSoft 1.0"})
    run(src, tmp_path)
    for written in ("full.jpg", "display.jpg"):
        data = (tmp_path / "out" / written).read_bytes()
        assert b"P07" not in data and b"Smith" not in data and b"ScanSoft" not in data


def test_png_text_time_and_exif_chunks_do_not_survive(tmp_path):
    src = tmp_path / "export.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "P07 baseline")
    info.add_itxt("Author", "Dr Smith")
    scene().save(src, pnginfo=info, exif=exif_bytes(1, "Nikon", "D850", gps=True))
    run(src, tmp_path)
    data = (tmp_path / "out" / "full.jpg").read_bytes()
    assert walk_jpeg(data).problems == []
    assert b"P07" not in data and b"Smith" not in data and b"Nikon" not in data


def test_the_same_photo_gives_the_same_bytes_every_time(tmp_path):
    src = camera_b(tmp_path / "b.jpg")
    first = prepare_file(src, tmp_path / "1" / "f.jpg", tmp_path / "1" / "d.jpg", SMALL)
    second = prepare_file(src, tmp_path / "2" / "f.jpg", tmp_path / "2" / "d.jpg", SMALL)
    assert (first.full_sha256, first.display_sha256) == (second.full_sha256, second.display_sha256)


def test_equalized_files_all_have_one_size_the_same_pixels_and_no_trailer(tmp_path):
    a = prepare_file(camera_a(tmp_path / "a.jpg"), tmp_path / "a" / "f.jpg", tmp_path / "a" / "d.jpg", SMALL)
    b = prepare_file(camera_b(tmp_path / "b.jpg"), tmp_path / "b" / "f.jpg", tmp_path / "b" / "d.jpg", SMALL)
    fulls = [tmp_path / "a" / "f.jpg", tmp_path / "b" / "f.jpg"]
    before = [Image.open(p).convert("RGB").tobytes() for p in fulls]
    sizes = {p.stat().st_size for p in fulls}
    assert len(sizes) == 2
    hashes = equalize_sizes(fulls)
    assert {p.stat().st_size for p in fulls} == {max(sizes)}
    assert [Image.open(p).convert("RGB").tobytes() for p in fulls] == before
    for p in fulls:
        walk = walk_jpeg(p.read_bytes())
        assert walk.problems == [] and walk.end == p.stat().st_size
    import hashlib
    assert hashes == {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in fulls}
    assert sorted(hashes.values()) != sorted([a.full_sha256, b.full_sha256])  # the smaller one grew


def grainy_scene(size=(1200, 900), seed=3) -> Image.Image:
    """A photo-like picture: smooth shapes under camera noise, which the encoder keeps."""
    img = scene(size)
    grain = Image.effect_noise(size, 30).convert("RGB")
    return Image.blend(img, grain, 0.2)


def decoded(data: bytes) -> "np.ndarray":
    import numpy as np

    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"), dtype=np.int16)


@pytest.mark.parametrize("quality", [90, 75, 50])
def test_a_disguised_copy_has_other_bytes_and_moves_no_pixel_by_more_than_two_grey_levels(quality):
    import numpy as np

    img = grainy_scene()
    plain = encode_jpeg(img, quality)
    copies = [encode_jpeg(disguise(img, seed, quality), quality) for seed in (1, 2)]
    assert len({plain, *copies}) == 3
    reference = decoded(plain)
    source = np.asarray(img, dtype=np.int16)
    for data in copies:
        diff = np.abs(decoded(data) - reference)
        # measured: at most 2 grey levels (one DC step of an 8x8 block and the IDCT's rounding),
        # on about DISGUISE_SHARE of the pixels; the encoder's own error is larger everywhere
        assert diff.max() <= 2 + (quality < 60)
        assert 0.3 * DISGUISE_SHARE < np.mean(diff.any(axis=2)) < 1.5 * DISGUISE_SHARE + 0.01
        assert diff.mean() < np.abs(reference - source).mean() / 10
        # the entropy-coded data differs from its first block on, not in one spot: only where
        # the bit shift of the codes after a changed block happens to be whole bytes (about one
        # place in eight) do bytes at the same offset agree
        scan = walk_jpeg(plain).scans[0][0]
        assert data[:scan] == plain[:scan] and data[scan:scan + 8] != plain[scan:scan + 8]
        same = np.frombuffer(data[scan:scan + 10000], np.uint8) == np.frombuffer(plain[scan:scan + 10000], np.uint8)
        assert same.mean() < 0.5


def test_the_same_seed_gives_the_same_disguised_copy_and_clipped_blocks_stay_untouched():
    import numpy as np

    img = Image.new("RGB", (64, 64), (255, 255, 255))
    img.paste((0, 0, 0), (0, 0, 8, 8))
    img.putpixel((3, 3), (255, 255, 255))  # block 0 holds 0 and 255: either way would clip
    a, b = disguise(img, 5, 90, share=1.0), disguise(img, 5, 90, share=1.0)
    assert a.tobytes() == b.tobytes()
    moved = np.abs(np.asarray(a, np.int16) - np.asarray(img, np.int16))
    assert moved[:8, :8].max() == 0 and moved.max() == 1 and moved[8:, 8:].min() == 1


def test_prepare_file_writes_a_disguised_copy_per_further_code(tmp_path):
    src = camera_a(tmp_path / "a.jpg")
    out = tmp_path / "out"
    res = prepare_file(src, out / "f.jpg", out / "d.jpg", SMALL,
                       [(out / "f1.jpg", out / "d1.jpg", 11), (out / "f2.jpg", out / "d2.jpg", 12)])
    import hashlib

    fulls = [(out / n).read_bytes() for n in ("f.jpg", "f1.jpg", "f2.jpg")]
    displays = [(out / n).read_bytes() for n in ("d.jpg", "d1.jpg", "d2.jpg")]
    assert len(set(fulls)) == 3 and len(set(displays)) == 3
    assert res.variants == tuple((hashlib.sha256(f).hexdigest(), hashlib.sha256(d).hexdigest())
                                 for f, d in zip(fulls[1:], displays[1:]))
    for data in fulls + displays:
        assert walk_jpeg(data).problems == []
    again = prepare_file(src, tmp_path / "again" / "f.jpg", tmp_path / "again" / "d.jpg", SMALL,
                         [(tmp_path / "again" / "f1.jpg", tmp_path / "again" / "d1.jpg", 11)])
    assert again.variants[0] == res.variants[0]


def test_padded_files_show_exiftool_nothing_more_than_unpadded_ones(tmp_path, exiftool):
    a = run(camera_a(tmp_path / "a.jpg"), tmp_path / "a")
    b = run(camera_b(tmp_path / "b.jpg"), tmp_path / "b")
    fulls = [tmp_path / "a" / "out" / "full.jpg", tmp_path / "b" / "out" / "full.jpg"]
    before = [json.loads(subprocess.run([exiftool, "-a", "-G1", "-s", "-j", "-e", str(p)],
                                        capture_output=True, check=True).stdout)[0] for p in fulls]
    equalize_sizes(fulls)
    after = [json.loads(subprocess.run([exiftool, "-a", "-G1", "-s", "-j", "-e", str(p)],
                                       capture_output=True, check=True).stdout)[0] for p in fulls]
    for old, new in zip(before, after):
        drop = {"System:FileSize", "System:FileModifyDate", "System:FileAccessDate",
                "System:FileInodeChangeDate"}
        assert {k: v for k, v in old.items() if k not in drop} == \
            {k: v for k, v in new.items() if k not in drop}
        assert not [k for k in new if "Warning" in k or "Trailer" in k or "Comment" in k]


# --------------------------------------------------------------------------- pixel identity


def test_the_same_pixels_with_other_metadata_give_the_same_pixel_hash(tmp_path):
    img = scene((800, 600))
    img.save(tmp_path / "one.png", pnginfo=None)
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "copied from the camera again")
    img.save(tmp_path / "two.png", pnginfo=info)
    one = run(tmp_path / "one.png", tmp_path / "1")
    two = run(tmp_path / "two.png", tmp_path / "2", Spec(640, 320, 90, (4, 3), "pad", portrait=True))
    other = scene((800, 600)).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    other.save(tmp_path / "three.png")
    three = run(tmp_path / "three.png", tmp_path / "3")
    assert one.pixel_sha256 == two.pixel_sha256
    assert three.pixel_sha256 != one.pixel_sha256


def test_an_upright_copy_and_a_tagged_sideways_copy_have_the_same_pixel_hash(tmp_path):
    img = scene((800, 600))
    img.save(tmp_path / "upright.png")
    img.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "sideways.png",
                                                  exif=exif_bytes(6))
    assert run(tmp_path / "upright.png", tmp_path / "1").pixel_sha256 == \
        run(tmp_path / "sideways.png", tmp_path / "2").pixel_sha256


# --------------------------------------------------------------------------- bad input


def test_a_zero_byte_file_is_refused_by_name(tmp_path):
    src = tmp_path / "P01_baseline_face.jpg"
    src.write_bytes(b"")
    with pytest.raises(DeidError, match=r"P01_baseline_face\.jpg: the file is empty"):
        probe(src)
    with pytest.raises(DeidError, match=r"P01_baseline_face\.jpg"):
        run(src, tmp_path)


def test_a_text_file_named_jpg_is_refused_by_name(tmp_path):
    src = tmp_path / "P01_baseline_face.jpg"
    src.write_text("participant,timepoint\nP01,baseline\n")
    with pytest.raises(DeidError, match=r"P01_baseline_face\.jpg: not an image"):
        probe(src)


def test_a_truncated_jpeg_is_refused_by_name_and_leaves_nothing_behind(tmp_path):
    src = tmp_path / "P01_baseline_face.jpg"
    buf = io.BytesIO()
    scene((1200, 900)).save(buf, "JPEG", quality=95)
    src.write_bytes(buf.getvalue()[: len(buf.getvalue()) * 2 // 3])
    probe(src)  # the header alone looks fine
    with pytest.raises(DeidError, match=r"P01_baseline_face\.jpg: the image data is truncated"):
        probe(src, full=True)
    with pytest.raises(DeidError, match=r"P01_baseline_face\.jpg: the image data is truncated"):
        run(src, tmp_path)
    assert not (tmp_path / "out").exists()


def test_a_truncated_grid_heic_is_refused_although_libheif_would_decode_it(tmp_path, monkeypatch):
    pillow_heif = pytest.importorskip("pillow_heif")
    monkeypatch.setattr(pillow_heif.options, "GRID_TILE_SIZE", 256)  # tiles, as iPhones write
    whole = tmp_path / "whole.heic"
    scene((1200, 900)).save(whole, quality=90)
    src = tmp_path / "P03_month12_hands.heic"
    src.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    with Image.open(src) as img:
        img.load()  # no error from the decoder: the missing tiles come out as flat colour
    with pytest.raises(DeidError, match=r"P03_month12_hands\.heic: the file is truncated"):
        probe(src)
    with pytest.raises(DeidError, match=r"P03_month12_hands\.heic: the file is truncated"):
        run(src, tmp_path)
    probe(whole, full=True)


def test_a_png_decompression_bomb_is_refused_from_its_header(tmp_path):
    src = tmp_path / "P01_baseline_face.png"
    src.write_bytes(png_header_only(20_000, 20_000))
    with pytest.raises(DeidError, match=r"P01_baseline_face\.png: the image is too large .*decompression bomb"):
        probe(src)
    with pytest.raises(DeidError, match=r"decompression bomb"):
        run(src, tmp_path)


def test_a_jpeg_claiming_more_than_the_pixel_limit_is_refused(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    side = int((MAX_PIXELS ** 0.5) + 100)
    data[sof + 5:sof + 9] = struct.pack(">HH", side, side)
    src = tmp_path / "P02_month12_neck.jpg"
    src.write_bytes(bytes(data))
    with pytest.raises(DeidError, match=r"P02_month12_neck\.jpg: the image is too large"):
        probe(src)


def test_a_batch_with_bad_files_raises_once_naming_every_bad_file(tmp_path):
    good = camera_a(tmp_path / "good.jpg")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("hello")
    jobs = [(p, tmp_path / "o" / f"{p.stem}-f.jpg", tmp_path / "o" / f"{p.stem}-d.jpg", SMALL)
            for p in (good, empty, text)]
    with pytest.raises(DeidError) as err:
        prepare_files(jobs, workers=1)
    message = str(err.value)
    assert message.startswith("2 of 3 photo(s) could not be de-identified")
    assert "empty.jpg: the file is empty" in message and "notes.jpg: not an image" in message
    assert "good.jpg" not in message


def test_a_parallel_batch_returns_results_in_job_order_with_the_same_bytes_as_one_by_one(tmp_path):
    sources = [camera_a(tmp_path / "a.jpg"), camera_b(tmp_path / "b.jpg")]
    scene().save(tmp_path / "c.png")
    sources.append(tmp_path / "c.png")
    jobs = [(p, tmp_path / "par" / f"{p.stem}-f.jpg", tmp_path / "par" / f"{p.stem}-d.jpg", SMALL)
            for p in sources]
    done = []
    results = prepare_files(jobs, workers=2, progress=done.append)
    assert [r.source for r in results] == sources
    assert sum(done) == 3
    for src, res in zip(sources, results):
        single = prepare_file(src, tmp_path / "one" / "f.jpg", tmp_path / "one" / "d.jpg", SMALL)
        assert (single.full_sha256, single.pixel_sha256) == (res.full_sha256, res.pixel_sha256)


def test_spec_refuses_a_display_copy_larger_than_the_full_copy():
    with pytest.raises(ValueError, match="display_long_edge"):
        Spec(1000, 2000, 90, (4, 3), "pad", False)


@pytest.mark.parametrize("resident, trimmed", [(90 * 2**20, False), (400 * 2**20, True), (None, True)])
def test_a_worker_trims_its_heap_only_above_the_memory_it_keeps_between_photos(
        resident, trimmed, tmp_path, monkeypatch):
    from assess.deid import workers

    calls = []
    monkeypatch.setattr(workers, "_TRIM_HEAP", lambda: calls.append(1))
    monkeypatch.setattr(workers, "_resident", lambda: resident)
    src = camera_a(tmp_path / "a.jpg")
    ok, _ = workers._job((src, tmp_path / "f.jpg", tmp_path / "d.jpg", SMALL))
    assert ok
    assert calls == ([1] if trimmed else [])


@pytest.mark.parametrize("resident, trimmed", [(150 * 2**20, False), (400 * 2**20, True)])
def test_a_worker_counts_the_memory_it_keeps_from_what_it_held_once_ready(
        resident, trimmed, tmp_path, monkeypatch):
    from assess.deid import workers

    calls = []
    monkeypatch.setattr(workers, "_TRIM_HEAP", lambda: calls.append(1))
    monkeypatch.setattr(workers, "_READY_RESIDENT", 95 * 2**20)  # e.g. with the text model loaded
    monkeypatch.setattr(workers, "_resident", lambda: resident)
    src = camera_a(tmp_path / "a.jpg")
    ok, _ = workers._job((src, tmp_path / "f.jpg", tmp_path / "d.jpg", SMALL))
    assert ok
    assert calls == ([1] if trimmed else [])


def test_a_process_knows_its_own_resident_memory():
    import assess.deid as deid

    resident = deid._resident()
    assert resident is not None and 10 * 2**20 < resident < 4 * 2**30


_THREAD_HEAP_SCRIPT = """
import sys, threading
from assess import deid
if sys.argv[1] == "one":
    deid.share_one_heap()
def read_files():
    big = bytearray(8 * 2**20)  # a large buffer, freed: glibc raises its trim threshold
    del big
    chunks = [bytearray(2**20) for _ in range(12)]  # what a reading thread holds for a while
    for c in chunks:
        c[::4096] = b"x" * len(c[::4096])
    del chunks
before = deid._resident()
t = threading.Thread(target=read_files)
t.start(); t.join()
deid._heap_trimmer()()
print((deid._resident() - before) // 2**20)
"""


def _glibc() -> bool:
    import assess.deid as deid

    return Path("/proc/self/statm").exists() and deid._heap_trimmer() is not None


@pytest.mark.skipif(not _glibc(), reason="needs Linux with glibc")
def test_memory_a_reading_thread_freed_goes_back_to_the_system_when_threads_share_one_heap():
    import sys

    def kept(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", _THREAD_HEAP_SCRIPT, mode], check=True,
                             capture_output=True, text=True)
        return int(out.stdout)

    assert kept("own") >= 8  # a thread with a heap of its own keeps it after a trim
    assert kept("one") <= 2


# --------------------------------------------------------------------------- bit depth and frames


def test_a_32_bit_float_tiff_on_0_to_1_comes_out_at_its_brightness_not_black(tmp_path):
    src = tmp_path / "float.tif"
    Image.new("F", (320, 240), 0.6).save(src)
    run(src, tmp_path, Spec(320, 160, 95, (4, 3), "pad", False))
    value = Image.open(tmp_path / "out" / "full.jpg").getpixel((160, 120))[0]
    assert abs(value - 0.6 * 255) <= 3


def test_a_float_tiff_with_values_outside_0_to_1_is_refused_naming_it(tmp_path):
    src = tmp_path / "float255.tif"
    Image.new("F", (320, 240), 180.0).save(src)
    with pytest.raises(DeidError, match=rf"{src}: a floating-point image with values from 180 to "
                                        r"180; assess reads float images on 0\.\.1"):
        run(src, tmp_path)
    assert not (tmp_path / "out" / "full.jpg").exists()


def test_a_dark_16_bit_photo_stays_dark_whatever_its_largest_value(tmp_path):
    src = tmp_path / "dark16.png"
    Image.new("I;16", (320, 240), 200).save(src)
    run(src, tmp_path, Spec(320, 160, 95, (4, 3), "pad", False))
    assert Image.open(tmp_path / "out" / "full.jpg").getpixel((160, 120))[0] <= 3  # 200 / 257


def test_a_32_bit_integer_tiff_is_refused_naming_it(tmp_path):
    src = tmp_path / "int32.tif"
    Image.new("I", (64, 48), 70000).save(src)
    with pytest.raises(DeidError, match=rf"{src}: a 32-bit integer image"):
        probe(src)
    with pytest.raises(DeidError, match="32-bit integer"):
        run(src, tmp_path)


def pages(path: Path, colours, fmt="TIFF") -> Path:
    frames = [Image.new("RGB", (320, 240), c) for c in colours]
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:])
    return path


def test_a_multi_page_tiff_is_refused_unless_a_frame_is_chosen(tmp_path):
    src = pages(tmp_path / "two.tif", [(200, 30, 30), (30, 200, 30)])
    assert probe(src).frames == ((320, 240), (320, 240))
    with pytest.raises(DeidError, match=rf"{src}: holds 2 frames .* \[photos\] frames"):
        run(src, tmp_path)
    prepare_file(src, tmp_path / "o" / "f.jpg", tmp_path / "o" / "d.jpg", SMALL, frame=1)
    r, g, b = Image.open(tmp_path / "o" / "f.jpg").getpixel((320, 240))
    assert g > 150 and r < 80  # the second page, green
    with pytest.raises(DeidError, match="frame 3 does not exist"):
        prepare_file(src, tmp_path / "o" / "f.jpg", tmp_path / "o" / "d.jpg", SMALL, frame=2)


def test_an_animated_png_is_refused_without_a_frame(tmp_path):
    src = pages(tmp_path / "anim.png", [(200, 30, 30), (30, 200, 30), (30, 30, 200)], fmt="PNG")
    assert len(probe(src).frames) == 3
    with pytest.raises(DeidError, match="holds 3 frames"):
        run(src, tmp_path)


# --------------------------------------------------------------------------- near-duplicates


def skin(visit: int, severity=0.5, size=(480, 360)) -> Image.Image:
    from assess.synth import draw_skin

    return Image.fromarray(draw_skin(size[1], size[0], "face", severity, geometry_seed=(7,),
                                     visit_seed=(7, visit)))


def print_of(img: Image.Image, tmp: Path, name: str):
    src = tmp / f"{name}.jpg"
    img.save(src, quality=95)
    return prepare_file(src, tmp / name / "f.jpg", tmp / name / "d.jpg", SMALL).fingerprint


@pytest.mark.parametrize("change", ["quality 60", "half size", "crop 3% a side", "crop 5% one side",
                                    "brighter 12%"])
def test_the_same_photo_re_encoded_resized_cropped_or_brightened_is_a_near_duplicate(change, tmp_path):
    from PIL import ImageEnhance

    from assess.deid import NEAR_DUPLICATE, similarity

    base = skin(1)
    w, h = base.size
    if change == "quality 60":
        buf = io.BytesIO()
        base.save(buf, "JPEG", quality=60)
        other = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    elif change == "half size":
        other = base.resize((w // 2, h // 2), Image.Resampling.LANCZOS)
    elif change == "crop 3% a side":
        other = base.crop((w * 3 // 100, h * 3 // 100, w - w * 3 // 100, h - h * 3 // 100))
    elif change == "crop 5% one side":
        other = base.crop((w * 5 // 100, 0, w, h))
    else:
        other = ImageEnhance.Brightness(base).enhance(1.12)
    assert similarity(print_of(base, tmp_path, "a"), print_of(other, tmp_path, "b")) >= NEAR_DUPLICATE


def test_two_visits_of_one_participant_and_region_are_not_near_duplicates(tmp_path):
    from assess.deid import NEAR_DUPLICATE, similarity

    first = print_of(skin(1), tmp_path, "a")
    for visit, severity in ((2, 0.5), (3, 0.3)):
        assert similarity(first, print_of(skin(visit, severity), tmp_path, f"v{visit}")) < NEAR_DUPLICATE


def test_real_camera_photos_of_other_scenes_are_not_near_duplicates_and_orientations_of_one_are(
        corpus_outputs):
    from itertools import combinations

    from assess.deid import NEAR_DUPLICATE, similarity

    # the camera photos (the Pillow test images are mostly one picture in many encodings)
    prints = {name: res.fingerprint for name, (_, res) in corpus_outputs.items()
              if not name.startswith("pillow__")}
    fixtures = {n for n in prints if "landscape_" in n or "portrait_" in n}

    def picture(name):  # the corpus holds a few pictures more than once (other format or tags)
        if name in fixtures:
            return "orientation"
        return "hopper" if "hopper" in name else "exif-png" if name.startswith("pillow__exif") else name

    flagged = [(a, b) for a, b in combinations(sorted(prints), 2)
               if similarity(prints[a], prints[b]) >= NEAR_DUPLICATE]
    assert [(a, b) for a, b in flagged if picture(a) != picture(b)] == []
    landscapes = sorted(n for n in fixtures if "landscape_" in n)
    assert all(similarity(prints[landscapes[0]], prints[n]) >= NEAR_DUPLICATE for n in landscapes[1:])
