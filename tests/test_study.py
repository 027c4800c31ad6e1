"""Study files: the template, the shipped scales and the errors a coordinator sees."""

from __future__ import annotations

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
    assert all(lv.description for s in scales.values() for lv in s.levels)


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
    without = re.sub(r"\[rating\][^\n]*\nmin_view_ms[^\n]*\n", "", TEMPLATE)
    assert "[rating]" not in without
    assert parse_study(without).rating.min_view_ms == 400


@pytest.mark.parametrize("line, field", [("min_view_ms = -1", "rating.min_view_ms"),
                                         ("min_view_ms = 0.4", "rating.min_view_ms"),
                                         ('min_view_ms = "400"', "rating.min_view_ms"),
                                         ("min_view_ms = 60000", "rating.min_view_ms"),
                                         ("min_view = 400", "rating.min_view")])
def test_a_bad_minimum_time_on_a_photo_is_refused_naming_the_field(line, field):
    with pytest.raises(StudyError, match=rf"study\.toml: {re.escape(field)}: "):
        parse_study(TEMPLATE.replace("min_view_ms = 400", line))
