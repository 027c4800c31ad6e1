"""Visible differences between visits: each measure, the threat table, and normalization."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pytest
from scipy.ndimage import binary_erosion, gaussian_filter
from scipy.stats import spearmanr

from assess.audit import audit_report, visible
from assess.blind import randomize
from assess.deid import read_pixels
from assess.pixels.visible import (PROPERTIES, TRIM, backdrop_weight, content_box, gain_tables, lab,
                                   measure, srgb_to_linear, subject_mask)
from assess.seal import SealError, verify
from assess.synth import CAMERAS, make_study


def scene(h=120, w=160, backdrop=(110, 125, 140), skin=(190, 140, 115), box=(30, 90, 40, 120),
          seed=0, noise=0.0):
    """A skin-coloured box with fine texture on a plain backdrop."""
    rng = np.random.default_rng(seed)
    img = np.empty((h, w, 3), np.float32)
    img[:] = backdrop
    t, b, l, r = box
    img[t:b, l:r] = skin
    img[t:b, l:r] += rng.normal(0, 6, (b - t, r - l, 1))  # texture of the skin
    if noise:
        img += rng.normal(0, noise, img.shape)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def with_gains(rgb, gains):
    lin = srgb_to_linear(rgb) * np.asarray(gains, np.float32)
    from assess.pixels.visible import linear_to_srgb

    return np.clip(linear_to_srgb(lin) * 255 + 0.5, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- measures


def test_a_warmer_white_balance_lowers_the_colour_temperature_and_a_bluer_one_raises_it():
    base = measure(scene())
    warm = measure(with_gains(scene(), (1.15, 1.0, 0.85)))
    cool = measure(with_gains(scene(), (0.85, 1.0, 1.15)))
    assert warm.temperature < base.temperature - 500 < cool.temperature - 1000
    assert warm.background_b > base.background_b + 3  # yellower backdrop
    assert abs(warm.luminance - base.luminance) < 3


def test_more_exposure_raises_luminance_and_the_backdrops_lightness():
    base = measure(scene())
    bright = measure(with_gains(scene(), (1.3, 1.3, 1.3)))
    assert bright.luminance > base.luminance + 4
    assert bright.background_l > base.background_l + 4
    assert abs(bright.temperature - base.temperature) < 100


def test_blur_lowers_the_sharpness_at_the_subjects_outline():
    sharp = scene()
    blurred = gaussian_filter(sharp.astype(np.float32), sigma=(1.5, 1.5, 0)).astype(np.uint8)
    assert measure(blurred).sharpness < 0.5 * measure(sharp).sharpness


def test_the_noise_estimate_follows_added_noise_in_the_backdrop():
    clean, grainy = measure(scene()), measure(scene(noise=4.0))
    assert clean.noise < 0.3
    lab_sigma = 4.0 * 100 / 255 * 0.75  # about 0.75 L* per 8-bit level at this lightness
    assert 0.5 * lab_sigma < grainy.noise < 2.0 * lab_sigma
    assert measure(scene(noise=8.0)).noise > 1.6 * grainy.noise


def test_the_subject_mask_finds_a_known_box_its_area_and_centre():
    look = measure(scene(box=(20, 80, 20, 80)))
    assert look.reliable
    assert look.subject_area == pytest.approx(60 * 60 / (120 * 160), abs=0.02)
    assert look.subject_x == pytest.approx(50 / 160, abs=0.02)
    assert look.subject_y == pytest.approx(50 / 120, abs=0.02)


def test_a_photo_without_a_subject_has_no_reliable_mask():
    plain = np.full((90, 120, 3), 120, np.uint8)
    mask, _, reliable = subject_mask(lab(plain))
    assert not reliable and not mask.any()


def test_a_padding_border_counts_neither_as_content_nor_as_background():
    photo = scene(h=120, w=120, box=(30, 90, 30, 90))
    padded = np.full((120, 160, 3), 128, np.uint8)
    padded[:, 20:140] = photo
    assert content_box(padded) == (0, 120, 20, 140)
    a, b = measure(photo), measure(padded)
    for name in ("luminance", "temperature", "background L*", "subject area", "subject x"):
        assert a.values()[name] == pytest.approx(b.values()[name], rel=1e-6, abs=1e-6), name


def test_gain_tables_apply_linear_gains_to_8_bit_values():
    table = gain_tables((2.0, 1.0, 0.5))
    assert table[256:512] == list(range(256))  # green unchanged
    lin = srgb_to_linear(np.arange(256, dtype=np.uint8))
    red = srgb_to_linear(np.array(table[:256], np.uint8))
    ok = lin < 0.45
    assert np.allclose(red[ok], np.minimum(1, 2 * lin[ok]), atol=0.01)
    assert table[255] == 255


def test_gains_match_the_skin_where_the_backdrop_is_painted_and_the_backdrop_elsewhere():
    from assess.pixels.visible import gains, subject_reference

    look = measure(scene())
    assert look.reliable and look.subject_linear[0] > look.background_linear[0]
    ref = tuple(1.2 * v for v in look.background_linear)
    assert gains(look, ref, True) == pytest.approx((1.2, 1.2, 1.2))
    skin = tuple(0.9 * v for v in look.subject_linear)
    assert gains(look, ref, True, skin) == pytest.approx((0.9, 0.9, 0.9))
    # trimmed: the backdrop's gains, moved towards the skin's by at most TRIM
    assert gains(look, ref, True, skin, TRIM) == pytest.approx((1.2 / 1.03,) * 3)
    near = tuple(1.01 * v for v in look.subject_linear)
    assert gains(look, tuple(look.background_linear), True, near, TRIM) == pytest.approx((1.01,) * 3)
    assert subject_reference([look]) == pytest.approx(look.subject_linear)
    flat = measure(np.full((90, 120, 3), 120, np.uint8))  # no reliable mask: never the skin
    assert gains(flat, flat.frame_linear, False, skin) == pytest.approx((1.0, 1.0, 1.0))
    assert subject_reference([flat]) is None


def test_the_contributing_photos_are_those_farthest_on_the_side_of_the_difference():
    rows = [{"code": f"B{i}", "timepoint": "baseline", "region": "face"} for i in range(6)]
    rows += [{"code": f"F{i}", "timepoint": "month12", "region": "face"} for i in range(6)]
    base = measure(scene())
    looks = {r["code"]: base for r in rows}
    looks["F0"] = replace(base, luminance=base.luminance + 20)  # the one photo that stands out
    looks["F1"] = replace(base, luminance=base.luminance + 10)
    table = visible.threats(rows, looks)
    row = next(t for t in table if t.property == "luminance")
    assert row.higher_in == "month12" and row.top[:2] == ("F0", "F1")
    assert row.auc == pytest.approx((2 * 1 + 4 * 0.5) / 6, abs=1e-4)
    assert not row.threat  # two outlying photos, the typical follow-up as bright as baseline
    for code in ("F2", "F3", "F4"):
        looks[code] = replace(base, luminance=base.luminance + 5)
    row = next(t for t in visible.threats(rows, looks) if t.property == "luminance")
    assert row.threat and row.median_2 - row.median_1 == pytest.approx(5, abs=1e-3)


# --------------------------------------------------------------------------- the synthetic trial


def texture(rgb):
    """A scripted rater's wrinkle score: fine L* detail inside the subject."""
    L = lab(rgb)[..., 0]
    mask, _, _ = subject_mask(lab(rgb))
    inner = binary_erosion(mask, iterations=4)
    detail = np.abs(L - gaussian_filter(L, 2.0))
    return float(detail[inner].mean()) if inner.any() else float(detail.mean())


def rater_spearman(made, synth):
    truth = synth.truth
    rows = list(csv.DictReader(open(made.key_dir / "key.csv", newline="")))
    levels, scores = [], []
    for r in rows:
        if r["repeat_of"]:
            continue
        levels.append(truth[(r["participant"], r["timepoint"], r["region"], r["view"])])
        scores.append(texture(read_pixels(made.rater_dir / "images" / "display" / f"{r['code']}.jpg")))
    return spearmanr(levels, scores)[0]


TRIAL = pytest.mark.xdist_group("visible-trial")  # one worker builds the trial once


@pytest.fixture(scope="module")
def trial(tmp_path_factory):
    """A face-only trial whose follow-up camera is warmer and brighter and otherwise the same,
    built without and with ``[pixels] normalize``."""
    root = tmp_path_factory.mktemp("visible")
    base = replace(CAMERAS[0], sensor_noise=2.0)
    follow = replace(base, make="Apple", model="iPhone 13 Pro", serial="F17GK2XQ0D8M",
                     extension=".jpg")
    synth = make_study(root / "images", participants=100, size=(200, 150), regions={"face": "wsrs"},
                       follow_up_look=(0.1, 0.2), cameras=(base, follow), skin_tones=(3, 4, 5),
                       rotated_fraction=0, heic_fraction=0, repeat_fraction=0.05)
    pairs = [[f"{p}_baseline_face.JPG", f"{p}_month12_face.jpg"]
             for p in sorted({p.participant for p in synth.photos})]
    with open(synth.study_path, "a", encoding="utf-8") as fh:  # one pose: genuine, alike photos
        fh.write(f"\n[photos]\ndistinct = {json.dumps(pairs)}\n")
    plain = randomize(synth.study_path, synth.images_dir, root / "sets", set_id="plain", seed=5,
                      workers=2)
    text = synth.study_path.read_text(encoding="utf-8")
    synth.study_path.write_text(text + "\n[pixels]\nnormalize = true\n", encoding="utf-8")
    normalized = randomize(synth.study_path, synth.images_dir, root / "sets", set_id="normalized",
                           seed=5, workers=2)
    synth.study_path.write_text(text + '\n[pixels]\nnormalize = true\nnormalize_to = "subject"\n',
                                encoding="utf-8")
    to_skin = randomize(synth.study_path, synth.images_dir, root / "sets", set_id="to-skin",
                        seed=5, workers=2)
    return synth, plain, normalized, to_skin


def aucs(made):
    return {t.property: t for t in made.visible}


@TRIAL
def test_a_warmer_brighter_follow_up_camera_is_reported_as_a_threat(trial):
    _, plain, _, _ = trial
    table = aucs(plain)
    assert set(table) == set(PROPERTIES)
    for name in ("temperature", "luminance", "background L*", "background b*"):
        assert table[name].auc > 0.8 and table[name].threat, (name, table[name])
    assert table["temperature"].higher_in == "baseline"  # the follow-ups are warmer
    assert table["luminance"].higher_in == "month12"
    assert len(table["luminance"].top) == visible.TOP_PHOTOS


@TRIAL
def test_the_threat_table_is_in_the_key_folder_sealed_and_never_in_the_rater_folder(trial):
    _, plain, _, _ = trial
    path = plain.key_dir / visible.TABLE_FILE
    rows = list(csv.DictReader(open(path, newline="")))
    assert {r["property"] for r in rows} == set(aucs(plain))
    temp = next(r for r in rows if r["property"] == "temperature")
    assert temp["threat"] == "yes" and len(temp["top_photos"].split()) == 3
    assert not list(plain.rater_dir.rglob("visible*"))
    verify(plain.rater_dir, plain.key_dir)
    original = path.read_bytes()
    path.write_bytes(original.replace(b"yes", b"no"))
    try:
        with pytest.raises(SealError, match="visible.csv"):
            verify(plain.rater_dir, plain.key_dir)
    finally:
        path.write_bytes(original)


@TRIAL
def test_audit_set_reports_the_same_visible_aucs_as_randomize(trial):
    _, plain, _, _ = trial
    report = audit_report(plain.rater_dir, plain.key_dir)
    rows = {r.property: r for r in report.aucs if r.kind == "visible"}
    assert {n: round(r.auc, 4) for n, r in rows.items()} == {
        n: round(t.auc, 4) for n, t in aucs(plain).items()}
    assert not any(f.kind == "timepoint-property" and "temperature" in f.message
                   for f in report.findings)  # a threat, never a finding


LIGHT_AND_COLOUR = ("luminance", "contrast", "temperature", "tint", "saturation", "noise",
                    "background L*", "background a*", "background b*")


@TRIAL
def test_normalization_to_the_backdrop_brings_every_light_and_colour_auc_to_at_most_0_6(trial):
    _, plain, normalized, _ = trial
    before, after = aucs(plain), aucs(normalized)
    assert {n for n, t in before.items() if t.threat} >= {"luminance", "temperature",
                                                          "background L*", "background b*"}
    assert not [t for t in after.values() if t.threat], after
    for name in ("luminance", "temperature", "saturation", "background L*", "background b*"):
        assert before[name].auc > 0.8, (name, before[name])
    assert {n: after[n].auc for n in LIGHT_AND_COLOUR if after[n].auc > 0.6} == {}
    # the outline's sharpness is not corrected (no photo is sharpened or blurred): near chance
    assert after["sharpness"].auc <= 0.65 and not after["sharpness"].threat
    assert not [w for w in normalized.warnings if "normalize" in w]  # every backdrop painted


@TRIAL
def test_normalization_to_the_subject_brings_every_visible_auc_to_at_most_0_6(trial):
    _, plain, _, to_skin = trial
    after = aucs(to_skin)
    assert {n: t.auc for n, t in after.items() if t.auc > 0.6} == {}
    assert not [t for t in after.values() if t.threat], after


def skin_spread(made) -> float:
    """Standard deviation over the photos of the skin's mean lightness (linear green)."""
    rows = list(csv.DictReader(open(made.key_dir / "key.csv", newline="")))
    looks = visible.measure_set(made.rater_dir, [r["code"] for r in rows])
    return float(np.std([look.subject_linear[1] for look in looks.values() if look.reliable]))


@TRIAL
def test_normalization_to_the_backdrop_keeps_each_skins_own_colour_and_to_the_subject_does_not(
        trial):
    _, plain, normalized, to_skin = trial
    before = skin_spread(plain)
    assert skin_spread(normalized) > 0.8 * before
    assert skin_spread(to_skin) < 0.3 * before


@TRIAL
def test_normalization_keeps_the_clinical_signal_for_a_rater_answering_from_the_pixels(trial):
    synth, plain, normalized, to_skin = trial
    rho_before, rho_after = rater_spearman(plain, synth), rater_spearman(normalized, synth)
    assert rho_before > 0.5
    assert rho_after >= rho_before - 0.01, (rho_before, rho_after)
    assert rater_spearman(to_skin, synth) >= rho_before - 0.01


# --------------------------------------------------------------------------- the pipeline's side


def test_gains_change_the_photo_but_not_its_pixel_hash_and_leave_the_padding_grey(tmp_path):
    from PIL import Image

    from assess.deid import BACKGROUND, Spec, prepare_file

    src = tmp_path / "square.jpg"
    Image.fromarray(scene(h=120, w=120, box=(30, 90, 30, 90))).save(src, quality=95)
    spec = Spec(long_edge=160, display_long_edge=160, quality=90, aspect=(4, 3), fit="pad")
    plain = prepare_file(src, tmp_path / "a.full.jpg", tmp_path / "a.display.jpg", spec)
    warm = prepare_file(src, tmp_path / "b.full.jpg", tmp_path / "b.display.jpg", spec,
                        gains=(1.2, 1.0, 0.8))
    assert warm.pixel_sha256 == plain.pixel_sha256 and warm.fingerprint == plain.fingerprint
    a, b = read_pixels(tmp_path / "a.display.jpg"), read_pixels(tmp_path / "b.display.jpg")
    assert np.abs(b[:, :15].astype(int) - BACKGROUND).max() <= 2  # the border is still grey
    assert measure(b).temperature < measure(a).temperature - 300
    ratio = measure(b).background_linear[0] / measure(a).background_linear[0]
    assert ratio == pytest.approx(1.2, rel=0.03)


def skin_and_backdrop(h=120, w=160, seed=0):
    """:func:`scene` with a grainy, shaded backdrop and a second, small patch of skin (a second
    hand) beside the main one."""
    img = scene(h=h, w=w, backdrop=(95, 115, 135), box=(30, 90, 40, 110), seed=seed)
    img = img.astype(np.float32)
    rng = np.random.default_rng(seed + 1)
    shade = np.linspace(1.06, 0.94, h, dtype=np.float32)[:, None, None]
    back = np.ones((h, w), bool)
    back[30:90, 40:110] = False
    back[50:62, 122:134] = False
    img[50:62, 122:134] = (185, 135, 110)
    img[back] = (img * shade)[back] + rng.normal(0, 3, (int(back.sum()), 3))
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def neutralize(rgb: np.ndarray, colour: tuple[int, int, int]) -> tuple[np.ndarray, bool]:
    """The pipeline's painting of the backdrop (``assess.deid._neutralize``) on an array."""
    from PIL import Image

    from assess.deid import _neutralize

    photo = Image.fromarray(rgb)
    done = _neutralize(photo, colour)
    return (np.asarray(photo) if done else rgb), done


def test_neutralize_paints_the_backdrop_and_keeps_every_skin_pixel():
    rgb = skin_and_backdrop()
    out, done = neutralize(rgb, (100, 120, 140))
    assert done
    weight = backdrop_weight(rgb)
    assert (weight[30:90, 40:110] == 1).all() and (weight[50:62, 122:134] == 1).all()
    assert (out[30:90, 40:110] == rgb[30:90, 40:110]).all()  # the subject, every pixel its own
    assert (out[50:62, 122:134] == rgb[50:62, 122:134]).all()  # and the second patch of skin
    far = weight == 0
    assert far.mean() > 0.3 and (out[far] == (100, 120, 140)).all()  # the backdrop, flat
    ring = (weight > 0) & (weight < 1)
    assert ring.any() and not ring[30:90, 40:110].any()  # the feather lies outside the skin
    # a photo without a reliable mask (no subject; a subject filling the frame) is left alone
    for photo in (np.full((90, 120, 3), 120, np.uint8), scene(box=(0, 120, 0, 160))):
        same, done = neutralize(photo, (100, 120, 140))
        assert not done and same is photo and backdrop_weight(photo) is None


def test_the_pipeline_paints_the_backdrop_in_every_copy_keeping_the_skin_and_padding(tmp_path):
    from PIL import Image

    from assess.deid import BACKGROUND, Spec, prepare_file

    src = tmp_path / "hand.png"
    Image.fromarray(skin_and_backdrop()[:, 20:140]).save(src)  # square: padded left and right
    spec = Spec(long_edge=160, display_long_edge=160, quality=90, aspect=(4, 3), fit="pad")
    gains, paint = (1.1, 1.0, 0.9), (100, 120, 140)
    plain = prepare_file(src, tmp_path / "a.full.jpg", tmp_path / "a.display.jpg", spec,
                         gains=gains)
    painted = prepare_file(src, tmp_path / "b.full.jpg", tmp_path / "b.display.jpg", spec,
                           variants=[(tmp_path / "v.full.jpg", tmp_path / "v.display.jpg", 7)],
                           gains=gains, backdrop=paint)
    assert painted.neutralized and not plain.neutralized
    assert painted.pixel_sha256 == plain.pixel_sha256 and painted.fingerprint == plain.fingerprint
    a = read_pixels(tmp_path / "a.display.jpg").astype(int)
    for name in ("b.full.jpg", "b.display.jpg", "v.full.jpg", "v.display.jpg"):
        b = read_pixels(tmp_path / name).astype(int)
        assert np.abs(b[:, :15] - BACKGROUND).max() <= 2, name  # the padding border is still grey
        top = b[:16, 32:128]  # the photo's backdrop above the subject (whole JPEG blocks)
        assert np.abs(top - paint).max() <= 3 and top.std(axis=(0, 1)).max() < 0.8, name
        # the skin away from the outline: as the gains alone leave it, bar the JPEG coding
        assert np.abs(b[45:75, 45:95] - a[45:75, 45:95]).max() <= 2, name
    assert np.abs(a[:16, 32:128] - paint).max() > 8  # without a colour, the backdrop stays
    # a photo without a reliable mask gets the gains only, byte for byte
    Image.fromarray(np.full((120, 120, 3), 120, np.uint8)).save(tmp_path / "flat.png")
    one = prepare_file(tmp_path / "flat.png", tmp_path / "c.full.jpg", tmp_path / "c.display.jpg",
                       spec, gains=gains)
    two = prepare_file(tmp_path / "flat.png", tmp_path / "d.full.jpg", tmp_path / "d.display.jpg",
                       spec, gains=gains, backdrop=paint)
    assert not two.neutralized and (one.full_sha256, one.display_sha256) == (two.full_sha256,
                                                                              two.display_sha256)


def test_the_synthetic_camera_look_is_checked():
    from assess.synth import SynthError

    with pytest.raises(SynthError, match="follow_up_look"):
        make_study("/nonexistent/never-made", follow_up_look=(0.9, 0.0))
    with pytest.raises(SynthError, match="skin_tones"):
        make_study("/nonexistent/never-made", skin_tones=(9,))


@TRIAL
def test_audit_set_prints_the_visible_threats_and_still_exits_0(trial):
    from click.testing import CliRunner

    from assess.cli import cli

    _, plain, _, _ = trial
    result = CliRunner().invoke(cli, ["audit-set", str(plain.rater_dir), "--key", str(plain.key_dir)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(line.startswith("temperature ") and " visible " in line and line.endswith("<- visible")
               for line in lines)
    assert any(line.startswith("Visible differences between visits: ") and "threat(s)" in line
               for line in lines)
    assert any(line.startswith("  face: temperature AUC ") for line in lines)
