"""Study files: the template, the shipped scales and the errors a coordinator sees."""

from __future__ import annotations

import random
import re

import pytest
from click.testing import CliRunner

from assess.cli import cli
from assess.study import TEMPLATE, StudyError, load_study, parse_study, shipped_scales


def test_the_template_written_by_init_is_a_valid_study(tmp_path):
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "trial")])
    assert result.exit_code == 0, result.output
    study = load_study(tmp_path / "trial" / "study.toml")
    assert study.timepoints == ("baseline", "month12")
    assert {r: study.regions[r].scale for r in study.regions} == {
        "face": "wsrs", "neck": "wsrs", "hands": "merz-hand"}
    assert study.blinding.raters == ("derm1",)
    assert study.blinding.repeat_fraction == 0.1


def test_init_refuses_to_overwrite_an_existing_study(tmp_path):
    (tmp_path / "study.toml").write_text("# mine\n")
    result = CliRunner().invoke(cli, ["init", str(tmp_path)])
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert (tmp_path / "study.toml").read_text() == "# mine\n"


def test_the_shipped_scales_have_the_published_ranges_and_directions():
    scales = shipped_scales()
    assert scales["wsrs"].values == (1, 2, 3, 4, 5)
    assert scales["merz-hand"].values == (0, 1, 2, 3, 4)
    assert scales["gais"].values == (1, 2, 3, 4, 5)
    assert scales["allergan-neck"].values == (0, 1, 2, 3, 4)
    assert [lv.label for lv in scales["glogau"].levels] == ["Type I", "Type II", "Type III", "Type IV"]
    assert scales["glogau"].kind == "categorical"
    assert all(s.better == "lower" for s in scales.values())
    assert all(lv.description for s in scales.values() for lv in s.levels if s.minimum is None)
    assert scales["nrs-wrinkles"].values == tuple(range(11))
    assert [lv.label for lv in scales["nrs-wrinkles"].levels][::10] == [
        "No wrinkles", "Worst imaginable wrinkles"]


def test_a_study_can_define_its_own_scale():
    text = TEMPLATE.replace('[regions.hands]\nscale = "merz-hand"',
                            '[regions.hands]\nscale = "my-scale"') + (
        '\n[scales.my-scale]\nbetter = "higher"\n'
        'levels = [{value = 1, label = "None"}, {value = 2, label = "Mild"}, {value = 3, label = "Marked"}]\n')
    study = parse_study(text)
    scale = study.scale_for("hands")
    assert scale.values == (1, 2, 3) and scale.better == "higher"
    assert scale.improvement(1, 3) == 2


@pytest.mark.parametrize("old, new, field", [
    ('timepoints = ["baseline", "month12"]', 'timepoints = ["baseline"]', "study.timepoints"),
    ('scale = "wsrs"', 'scale = "wrsr"', "regions.face.scale"),
    ("repeat_fraction = 0.1", "repeat_fraction = 1.5", "blinding.repeat_fraction"),
    ('presentation = "single"', 'presentation = "triples"', "blinding.presentation"),
    ('raters = ["derm1"]', 'raters = []', "blinding.raters"),
    ("quality = 90", "quality = 101", "normalize.quality"),
    ('aspect = "4:3"', 'aspect = "wide"', "normalize.aspect"),
    ('id = "NCT06217627"', 'id = ""', "study.id"),
])
def test_an_invalid_study_names_the_field(old, new, field):
    assert old in TEMPLATE
    with pytest.raises(StudyError, match=field.replace(".", r"\.")):
        parse_study(TEMPLATE.replace(old, new, 1))


def test_a_scale_with_duplicate_levels_is_refused():
    text = TEMPLATE + ('\n[scales.bad]\nlevels = [{value = 1, label = "A"}, {value = 1, label = "B"}]\n')
    with pytest.raises(StudyError, match=r"scales\.bad\.levels: values must be unique"):
        parse_study(text)


def test_a_missing_study_file_says_how_to_create_one(tmp_path):
    with pytest.raises(StudyError, match="assess init"):
        load_study(tmp_path / "nope.toml")


def test_the_minimum_time_on_a_photo_is_400_ms_unless_the_study_sets_it():
    assert parse_study(TEMPLATE).rating.min_view_ms == 400
    text = TEMPLATE.replace("min_view_ms = 400", "min_view_ms = 1200")
    assert parse_study(text).rating.min_view_ms == 1200
    without = re.sub(r"\[rating\][^\n]*\nmin_view_ms[^\n]*\nsession_hours[^\n]*\n", "",
                     TEMPLATE)
    assert "[rating]" not in without
    assert parse_study(without).rating.min_view_ms == 400


def test_a_sign_in_holds_12_hours_unless_the_study_sets_it():
    assert parse_study(TEMPLATE).rating.session_hours == 12
    text = TEMPLATE.replace("session_hours = 12", "session_hours = 2.5")
    assert parse_study(text).rating.session_hours == 2.5
    without = TEMPLATE.replace("session_hours = 12", "")
    assert parse_study(without).rating.session_hours == 12


@pytest.mark.parametrize("line, field", [("min_view_ms = -1", "rating.min_view_ms"),
                                         ("min_view_ms = 0.4", "rating.min_view_ms"),
                                         ('min_view_ms = "400"', "rating.min_view_ms"),
                                         ("min_view_ms = 60000", "rating.min_view_ms"),
                                         ("min_view = 400", "rating.min_view")])
def test_a_bad_minimum_time_on_a_photo_is_refused_naming_the_field(line, field):
    with pytest.raises(StudyError, match=rf"study\.toml: {re.escape(field)}: "):
        parse_study(TEMPLATE.replace("min_view_ms = 400", line))


# ----------------------------------------------------------------- the study file means what it says


@pytest.mark.parametrize("old, new, message", [
    ('raters = ["derm1"]', 'rater = ["derm2"]', r"blinding\.rater: unknown key; did you mean 'raters'"),
    ("repeat_fraction = 0.1", "repeat_fracton = 0.5",
     r"blinding\.repeat_fracton: unknown key; did you mean 'repeat_fraction'"),
    ("long_edge = 2000", "long_egde = 2000", r"normalize\.long_egde: unknown key; did you mean 'long_edge'"),
    ('scale = "wsrs"', 'scale = "wsrs"\nrefrences = "refs"',
     r"regions\.face\.refrences: unknown key; did you mean 'references'"),
    ('title = "Skin', 'titel = "Skin', r"study\.titel: unknown key; did you mean 'title'"),
    ("[normalize]", "[normalise]", r"\[normalise\]: unknown section; did you mean \[normalize\]"),
])
def test_an_unknown_key_or_section_is_refused_with_the_nearest_valid_one(old, new, message):
    assert old in TEMPLATE
    with pytest.raises(StudyError, match=message):
        parse_study(TEMPLATE.replace(old, new, 1))


def test_an_unknown_key_in_a_level_of_a_study_scale_is_refused():
    text = TEMPLATE + ('\n[scales.mine]\nlevels = [{value = 1, label = "A"}, '
                       '{value = 2, label = "B", descripton = "x"}]\n')
    with pytest.raises(StudyError, match=r"scales\.mine\.levels\[1\]\.descripton: unknown key; did "
                                         r"you mean 'description'"):
        parse_study(text)


@pytest.mark.parametrize("old, new, field", [
    ('raters = ["derm1"]', 'raters = ["derm1\\n"]', "blinding.raters"),
    ('timepoints = ["baseline", "month12"]', 'timepoints = ["baseline", "month12\\n"]',
     "study.timepoints"),
    ("[regions.face]", '[regions."face\\n"]', "regions"),
    ('raters = ["derm1"]', f'raters = ["{"d" * 65}"]', "blinding.raters"),
    ('id = "NCT06217627"', f'id = "{"N" * 65}"', "study.id"),
    ('aspect = "4:3"', 'aspect = "4:3\\n"', "normalize.aspect"),
])
def test_an_id_with_a_trailing_newline_or_over_long_is_refused_naming_the_field(old, new, field):
    assert old in TEMPLATE
    with pytest.raises(StudyError, match=field.replace(".", r"\.")):
        parse_study(TEMPLATE.replace(old, new, 1))


def test_the_shared_name_check_matches_ids_whole():
    from assess.study import is_name

    assert is_name("derm1") and is_name("a" * 64)
    assert not any(is_name(v) for v in ("derm1\n", "a" * 65, "-a", "a_b", "", "derm 1", 7))


def test_a_set_id_with_a_newline_is_refused_before_anything_is_written(tmp_path):
    from assess.blind import BlindError, _check_set_id

    with pytest.raises(BlindError, match="set id"):
        _check_set_id("trial-1\n")
    _check_set_id("trial-1")


@pytest.mark.parametrize("extra, message", [
    ('[regions.FACE]\nscale = "gais"\n', r"regions 'face' and 'FACE' differ only in case"),
    (None, r"timepoints 'baseline' and 'Baseline' differ only in case"),
    (None, r"rater ids 'derm1' and 'DERM1' differ only in case"),
    ('[scales.mine]\nlevels = [{value = 1, label = "A"}, {value = 2, label = "B"}]\n'
     '[scales.MINE]\nlevels = [{value = 1, label = "A"}, {value = 2, label = "B"}]\n',
     r"scale ids 'mine' and 'MINE' differ only in case"),
])
def test_ids_that_differ_only_in_case_are_refused(extra, message):
    text = TEMPLATE
    if "timepoints" in message:
        text = text.replace('timepoints = ["baseline", "month12"]', 'timepoints = ["baseline", "Baseline"]')
    elif "rater" in message:
        text = text.replace('raters = ["derm1"]', 'raters = ["derm1", "DERM1"]')
    else:
        text += "\n" + extra
    with pytest.raises(StudyError, match=message):
        parse_study(text)


@pytest.mark.parametrize("sid", ["wsrs", "WSRS", "merz-hand"])
def test_redefining_a_shipped_scale_is_refused_asking_for_a_new_id(sid):
    text = TEMPLATE + (f'\n[scales.{sid}]\nlevels = [{{value = 1, label = "A"}}, '
                       '{value = 2, label = "B"}]\n')
    with pytest.raises(StudyError, match=rf"scales\.{sid}: .* shipped scale and cannot be redefined; "
                                         "define a new id"):
        parse_study(text)


def test_a_study_file_that_is_not_utf8_is_refused_naming_the_file_and_line(tmp_path):
    path = tmp_path / "study.toml"
    path.write_bytes(TEMPLATE.replace("Skin rejuvenation", "Rajeunissement cutan\u00e9").encode("latin-1"))
    with pytest.raises(StudyError, match=rf"{path}: line 5: not UTF-8 text .* save the file as UTF-8"):
        load_study(path)


def test_a_study_file_saved_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "study.toml"
    path.write_bytes(b"\xef\xbb\xbf" + TEMPLATE.encode())
    assert load_study(path).id == "NCT06217627"


@pytest.mark.parametrize("old, new, field", [
    ('title = "Skin', 'title = "\\u0007Skin', "study.title"),
    ('raters = ["derm1"]', 'raters = ["derm\\u00001"]', "blinding.raters[0]"),
    ('id = "NCT06217627"', 'id = "NCT0621\\u202876"', "study.id"),
])
def test_a_control_character_is_refused_naming_the_field(old, new, field):
    with pytest.raises(StudyError, match=rf"{field.replace('.', '[.]').replace('[0]', '.0.')}: holds "
                                         "the control character"):
        parse_study(TEMPLATE.replace(old, new, 1))


@pytest.mark.parametrize("old, new, field", [
    ('title = "Skin rejuvenation with umbilical cord secretome"', "title = 12", "study.title"),
    ('scale = "wsrs"', 'scale = "wsrs"\nreferences = 3', "regions.face.references"),
    ('scale = "wsrs"', "scale = 3", "regions.face.scale"),
    ("[blinding]", "blinding = 3\n[blinding2]", "[blinding"),
    ('aspect = "4:3"', "aspect = 1.33", "normalize.aspect"),
    ('aspect = "4:3"', 'aspect = "100:1"', "normalize.aspect"),
    ("seed = 20261125", "seed = 1979-05-27", "blinding.seed"),
])
def test_a_value_of_the_wrong_type_is_refused_naming_the_field(old, new, field):
    text = TEMPLATE.replace("# seed = 20261125", "seed = 20261125")
    assert old in text
    with pytest.raises(StudyError, match=re.escape(field)):
        parse_study(text.replace(old, new, 1))


def test_randomly_damaged_study_files_give_a_study_error_never_a_traceback():
    rng = random.Random(11)
    pieces = ['\x00', '\n', '"', '[', ']', '=', '.', '{', '}', '1e999', 'nan', ',', '\\', '[[x]]',
              'true', '1979-05-27', '\u2028']
    for _ in range(3000):
        text = list(TEMPLATE)
        for _ in range(rng.randint(1, 3)):
            text.insert(rng.randrange(len(text)), rng.choice(pieces))
        try:
            parse_study("".join(text))
        except StudyError:
            pass


def test_the_photos_section_gives_frames_and_confirmed_distinct_pairs():
    text = TEMPLATE.replace("[photos]", '[photos]\nframes = {"P1_baseline_face.tif" = 2}\n'
                            'distinct = [["P1_baseline_face.jpg", "P1_month12_face.jpg"]]\n')
    photos = parse_study(text).photos
    assert photos.frame_of("P1_baseline_face.tif") == 2 and photos.frame_of("other.tif") is None
    assert photos.is_distinct("P1_month12_face.jpg", "P1_baseline_face.jpg")
    assert not photos.is_distinct("P1_month12_face.jpg", "P2_baseline_face.jpg")
    with pytest.raises(StudyError, match=r"photos\.frames\.'a.tif': must be a frame number from 1"):
        parse_study(TEMPLATE.replace("[photos]", '[photos]\nframes = {"a.tif" = 0}\n'))
    with pytest.raises(StudyError, match=r"photos\.distinct\[0\]: must be two different file names"):
        parse_study(TEMPLATE.replace("[photos]", '[photos]\ndistinct = [["a.jpg"]]\n'))


def test_the_template_documents_every_known_key():
    from assess.study import KNOWN_KEYS

    for section, keys in KNOWN_KEYS.items():
        if section.startswith("scales"):
            continue
        for key in keys:
            assert re.search(rf"^#.*\b{key} = |^{key} = ", TEMPLATE, re.M), (section, key)


# ----------------------------------------------------------------- [pixels]


def test_the_text_search_refuses_by_default_and_normalization_is_off():
    pixels = parse_study(TEMPLATE).pixels
    assert (pixels.text, pixels.normalize, pixels.allow_text) == ("refuse", False, {})
    assert pixels.normalize_to == "backdrop"
    to = TEMPLATE.replace('# normalize_to = "backdrop"', 'normalize_to = "subject"', 1)
    assert parse_study(to).pixels.normalize_to == "subject"
    without = re.sub(r"\[pixels\].*?(?=\n# A panel)", "", TEMPLATE, flags=re.S)
    assert "[pixels]" not in without
    assert parse_study(without).pixels.text == "refuse"


def test_harmless_text_is_allowed_per_file_with_its_reason():
    text = TEMPLATE.replace('# allow_text = {"P07_baseline_face.jpg"',
                            'allow_text = {"site 2/P07_baseline_face.jpg"', 1)
    pixels = parse_study(text.replace('text = "refuse"', 'text = "mask"', 1)).pixels
    assert pixels.text == "mask"
    assert pixels.text_allowed("site 2/P07_baseline_face.jpg") == "the clinic's logo on the wall"
    assert pixels.text_allowed("site 2\\P07_baseline_face.jpg") == "the clinic's logo on the wall"
    assert pixels.text_allowed("P07_month12_face.jpg") is None


@pytest.mark.parametrize("old, new, field", [
    ('text = "refuse"', 'text = "blur"', "pixels.text"),
    ('text = "refuse"', "text = false", "pixels.text"),
    ("normalize = false ", 'normalize = "yes" ', "pixels.normalize"),
    ('# normalize_to = "backdrop"', 'normalize_to = "skin"', "pixels.normalize_to"),
    ('# allow_text = {"P07_baseline_face.jpg" = "the clinic\'s logo on the wall"}',
     'allow_text = {"P07_baseline_face.jpg" = ""}', "pixels.allow_text.'P07_baseline_face.jpg'"),
    ('# allow_text = {"P07_baseline_face.jpg" = "the clinic\'s logo on the wall"}',
     'allow_text = ["P07_baseline_face.jpg"]', "pixels.allow_text"),
    ('text = "refuse"', 'text = "refuse"\nallow = {}', "pixels.allow"),
])
def test_a_bad_pixels_setting_is_refused_naming_the_field(old, new, field):
    assert old in TEMPLATE
    with pytest.raises(StudyError, match=rf"study\.toml: {re.escape(field)}: "):
        parse_study(TEMPLATE.replace(old, new, 1))
