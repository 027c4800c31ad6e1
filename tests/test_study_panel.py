"""The panel's sections of study.toml: read strictly, documented in the template."""

from __future__ import annotations

import re

import pytest

from assess import panel
from assess.study import TEMPLATE, StudyError, parse_study


def uncommented_panel() -> str:
    """The template with its commented panel sections switched on."""
    block = TEMPLATE.split("# A panel of raters")[1].split("# A study's own scale")[0]
    lines = [ln[2:] for ln in block.splitlines() if re.match(r"# (\[\w+\]|\w+ = )", ln)]
    return TEMPLATE + "\n" + "\n".join(lines) + "\n"


def test_the_template_panel_sections_switched_on_are_a_valid_study():
    rules = parse_study(uncommented_panel()).panel
    assert rules.qualification == panel.Qualification(
        min_kappa=0.7, min_kappa_lower=0.5, min_exact=0.6, min_within_one=0.9,
        weights="linear", attempts=2, feedback="end")
    assert rules.calibration == panel.Calibration(rate=0.1, block=20, min_exact=0.5,
                                                  min_within_one=0.8)
    assert rules.consensus.rule == "median"
    assert rules.adjudication == panel.Adjudication("derm9", 2.0, 1.0, True)


def test_a_study_without_panel_sections_has_no_panel_rules():
    assert parse_study(TEMPLATE).panel == panel.Rules()


def test_a_misspelt_panel_key_is_refused_with_the_nearest_one():
    text = TEMPLATE + "\n[qualification]\nmin_kapa = 0.7\n"
    with pytest.raises(StudyError, match=r"qualification\.min_kapa: unknown key; did you mean "
                                         r"'min_kappa'\?"):
        parse_study(text)


def test_a_wrong_panel_value_names_the_file_and_field():
    with pytest.raises(StudyError, match=r"^study\.toml: consensus\.rule: must be one of median"):
        parse_study(TEMPLATE + '\n[consensus]\nrule = "vote"\n')


def test_an_adjudicator_who_is_also_a_panel_rater_is_refused():
    with pytest.raises(StudyError, match=r"adjudication\.adjudicator: 'derm1' is one of the panel"):
        parse_study(TEMPLATE + '\n[adjudication]\nadjudicator = "derm1"\n')


def test_an_adjudicator_id_must_be_a_plain_name():
    with pytest.raises(StudyError, match=r"adjudication\.adjudicator: 'dr x' must be a rater id"):
        parse_study(TEMPLATE + '\n[adjudication]\nadjudicator = "dr x"\n')


def test_formats_md_names_every_panel_key():
    from pathlib import Path

    text = (Path(__file__).parents[1] / "docs" / "formats.md").read_text(encoding="utf-8")
    for section, keys in panel.KEYS.items():
        assert f"[{section}]" in text, section
        for key in keys:
            assert f"`{key}`" in text, (section, key)
