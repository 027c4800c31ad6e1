"""Any scale in study.toml: integer ranges, half steps and visual analogue scales."""

import pytest

from assess.study import TEMPLATE, Scale, StudyError, parse_study

HANDS = '[regions.hands]\nscale = "merz-hand"'


def study_with(scale_toml: str):
    text = TEMPLATE.replace(HANDS, '[regions.hands]\nscale = "mine"') + "\n[scales.mine]\n" + scale_toml
    return parse_study(text)


def test_a_range_without_levels_gives_every_whole_level_labelled_by_its_number():
    scale = study_with('min = 1\nmax = 12\n').scale_for("hands")
    assert scale.values == tuple(range(1, 13))
    assert [lv.label for lv in scale.levels][:3] == ["1", "2", "3"]
    assert scale.entry == "typed"


def test_a_range_keeps_the_labels_it_gives_and_numbers_the_rest():
    scale = study_with('min = 0\nmax = 10\nlevels = [{value = 0, label = "None"}, '
                       '{value = 10, label = "Worst"}]\n').scale_for("hands")
    assert [lv.label for lv in scale.levels] == ["None"] + [str(v) for v in range(1, 10)] + ["Worst"]


def test_declared_half_steps_give_every_half_level():
    scale = study_with('min = 1\nmax = 5\nstep = 0.5\n').scale_for("hands")
    assert scale.values == (1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5)
    assert [type(v) for v in scale.values[:2]] == [int, float]
    assert scale.entry == "typed"
    assert scale.accepts(2.5) and scale.accepts(2.0) and not scale.accepts(2.25)


def test_single_digit_levels_still_rate_with_one_key():
    assert parse_study(TEMPLATE).scale_for("hands").entry == "digit"


def test_a_vas_has_a_range_anchors_and_no_levels():
    scale = study_with('kind = "vas"\nanchors = ["No wrinkles", "Worst imaginable"]\n').scale_for("hands")
    assert (scale.minimum, scale.maximum, scale.step, scale.levels) == (0, 100, 1, ())
    assert scale.anchors == ("No wrinkles", "Worst imaginable")
    assert scale.entry == "slider" and scale.continuous and scale.test == "paired-t"
    assert scale.accepts(0) and scale.accepts(37) and scale.accepts(100)
    assert not scale.accepts(100.5) and not scale.accepts(-1) and not scale.accepts(37.5)
    assert not scale.accepts(True) and not scale.accepts(float("nan"))


def test_every_kind_of_scale_survives_the_set_file_unchanged():
    for toml in ('min = 0\nmax = 10\n', 'min = 1\nmax = 5\nstep = 0.5\n',
                 'kind = "vas"\nstep = 0.5\nanchors = ["None", "Worst"]\ntest = "wilcoxon"\n',
                 'levels = [{value = 1, label = "A"}, {value = 1.5, label = "B"}]\nstep = 0.5\n'):
        scale = study_with(toml).scale_for("hands")
        assert Scale.from_dict(scale.to_dict()) == scale


@pytest.mark.parametrize("toml, field, words", [
    ('min = 0\nmax = 10\nstep = 0.3\n', "scales.mine.step", "must be 1 or 0.5"),
    ('min = 0\nmax = 10.5\n', "scales.mine.max", "not a multiple of step 1"),
    ('min = 10\nmax = 2\n', "scales.mine.max", "greater than min"),
    ('min = 5\nmax = 5\n', "scales.mine.max", "greater than min"),
    ('min = 0\n', "scales.mine.max", "give both min and max"),
    ('min = 0\nmax = 500\n', "scales.mine.max", "at most 101"),
    ('min = -3\nmax = 3\n', "scales.mine.min", "from 0 to 1000"),
    ('min = 0\nmax = "ten"\n', "scales.mine.max", "must be a number"),
    ('min = 0\nmax = true\n', "scales.mine.max", "must be a number"),
    ('min = 1\nmax = 5\nlevels = [{value = 7, label = "x"}]\n', "scales.mine.levels[0].value",
     "outside min 1 to max 5"),
    ('levels = [{value = 1, label = "a"}, {value = 1.5, label = "b"}]\n',
     "scales.mine.levels[1].value", "declare step = 0.5"),
    ('levels = [{value = 1, label = "a"}, {value = nan, label = "b"}]\n',
     "scales.mine.levels[1].value", "must be a number"),
    ('kind = "vas"\nanchors = ["a", "b"]\nlevels = [{value = 0, label = "None"}]\n',
     "scales.mine.levels", "has no levels"),
    ('kind = "vas"\n', "scales.mine.anchors", "two ends"),
    ('kind = "vas"\nanchors = ["only one"]\n', "scales.mine.anchors", "two ends"),
    ('kind = "vas"\nanchors = ["a", " "]\n', "scales.mine.anchors", "two ends"),
    ('kind = "vas"\nanchors = ["a", "b"]\nstep = 0.25\n', "scales.mine.step", "1 or 0.5 or 0.1"),
    ('kind = "vas"\nanchors = ["a", "b"]\nmin = 0\nmax = 0\n', "scales.mine.max", "greater than min"),
    ('min = 0\nmax = 10\nanchors = ["a", "b"]\n', "scales.mine.anchors", "only a visual analogue"),
    ('kind = "categorical"\nstep = 0.5\nmin = 1\nmax = 3\n', "scales.mine.step", "whole levels only"),
    ('kind = "slider"\nmin = 1\nmax = 3\n', "scales.mine.kind", "\"vas\""),
    ('minimum = 1\nmax = 3\n', "scales.mine.minimum", "unknown key"),
    ('kind = "vas"\nanchors = ["a", "b"]\ntest = "t"\n', "scales.mine.test", "\"paired-t\" or"),
    ('min = 0\nmax = 10\ntest = "paired-t"\n', "scales.mine.test", "compared by rank"),
])
def test_a_hostile_scale_is_refused_with_one_message_naming_the_field(toml, field, words):
    with pytest.raises(StudyError) as err:
        study_with(toml)
    assert field in str(err.value) and words in str(err.value)


@pytest.fixture(scope="module")
def scales_set(tmp_path_factory):
    from rater_sets import build_rater_set

    from assess import rate

    rater_dir, _, _ = build_rater_set(tmp_path_factory.mktemp("scales") / "set", participants=2,
                                      regions={"face": "nrs-wrinkles", "hands": "vas-wrinkles"})
    return rate.load_rater_set(rater_dir)


def test_the_set_file_carries_a_0_to_10_scale_and_a_vas_to_the_rating_app(scales_set):
    assert scales_set.scales["nrs-wrinkles"].values == tuple(range(11))
    vas = scales_set.scales["vas-wrinkles"]
    assert (vas.continuous, vas.anchors, vas.test) == (True, ("No wrinkles", "Worst imaginable wrinkles"),
                                                       "paired-t")


def test_a_rater_saves_ten_on_a_0_to_10_scale_and_any_point_of_a_vas_but_nothing_off_it(
        scales_set, tmp_path):
    from assess import rate, store

    wl = scales_set.worklist("derm1")
    nrs = next(it for it in wl.items if it.scale == "nrs-wrinkles")
    vas = next(it for it in wl.items if it.scale == "vas-wrinkles")
    db = tmp_path / "r.sqlite"
    assert wl.save(db, nrs.item, score=10).score == 10
    assert wl.save(db, vas.item, score=37).score == 37
    for item, bad, words in ((nrs.item, 11, "not a level"), (nrs.item, 2.5, "not a level"),
                             (vas.item, 100.5, "range 0 to 100"), (vas.item, 37.5, "steps of 1"),
                             (vas.item, -1, "range 0 to 100")):
        with pytest.raises(rate.RateError, match=words):
            wl.save(db, item, score=bad)
    assert dict(store.current_ratings(db)[["item", "score"]].itertuples(index=False)) == {
        nrs.item: 10, vas.item: 37}
