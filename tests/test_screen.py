"""The rating screen's titles, guide, pause and comment saving, through Streamlit's AppTest."""

from __future__ import annotations

import time

from test_app import (click, cookie_jars, env, events, level_key, pairs_env, shown,  # noqa: F401
                      signed_in,
                      sign_in, open_app)

from assess import rate


def _markdown(at) -> str:
    return "\n".join(md.value for md in at.markdown)


def test_a_single_photo_names_its_region_with_the_scale(env):
    at = signed_in(env)
    wl = env.rs.worklist("derm1")
    seen = set()
    for _ in range(len(wl.items)):
        it = wl.items[wl.index[shown(at)]]
        region = it.region[:1].upper() + it.region[1:]
        assert f"{region} — {env.rs.scales[it.scale].name}" in _markdown(at)
        seen.add(it.region)
        click(at, "nav-forward")
    assert seen == {"face", "hands"}


def test_the_pairs_screen_asks_about_the_region_on_its_scale(pairs_env):
    at = signed_in(pairs_env)
    wl = pairs_env.rs.worklist("derm1")
    questions = set()
    for _ in range(len(wl.items)):
        text = _markdown(at)
        it = wl.items[wl.index[shown(at)]]
        if it.region == "hands":
            assert "Which hand looks better on the Merz hand grading scale?" in text
        else:
            assert "Which face looks better on the Wrinkle Severity Rating Scale?" in text
        assert "Which looks better?" not in text
        questions.add(it.region)
        click(at, "nav-forward")
    assert questions == {"face", "hands"}


def test_a_pause_hides_the_photo_and_stops_its_clock(env):
    at = signed_in(env)
    item = shown(at)
    click(at, "pause")
    assert "/display/" not in _markdown(at) and "Paused" in _markdown(at)
    assert not [b for b in at.button if b.key and b.key.startswith("level-")]
    time.sleep(2.0)
    click(at, "resume")
    assert shown(at) == item
    click(at, level_key(env, "derm1", item))
    df = events(env)
    assert list(df["item"]) == [item]
    assert df["seconds"][0] < 1.5  # the two seconds of the pause are not counted


def test_enter_in_the_comment_box_of_a_rated_photo_saves_the_comment_with_its_rating(env):
    at = signed_in(env)
    items = env.rs.worklist("derm1").items
    click(at, level_key(env, "derm1", items[0].item, 1))
    click(at, "nav-back")
    click(at, "comment-open")
    at.text_input(key="comment").input("scar at the chin")
    click(at, "comment-save")  # what Enter in the box presses
    df = events(env)
    assert list(df["revision"]) == [1, 2]
    assert list(df["score"]) == [df["score"][0]] * 2
    assert list(df["comment"].fillna("")) == ["", "scar at the chin"]


def test_the_guide_closes_again(make_rater_set, tmp_path, monkeypatch):
    rater_dir, _, access = make_rater_set(name="refs", references=True)
    monkeypatch.setenv(rate.ENV_RATER_DIR, str(rater_dir))
    monkeypatch.setenv(rate.ENV_DB, str(tmp_path / "r.sqlite"))
    rs = rate.load_rater_set(rater_dir)
    at = sign_in(open_app(), "derm1", access["derm1"])
    wl = rs.worklist("derm1")
    while wl.items[wl.index[shown(at)]].scale != "wsrs":
        click(at, "nav-forward")
    click(at, "guide")
    assert len(at.get("image")) == 5
    click(at, "guide-close")
    assert not at.get("image")
    click(at, "guide")
    click(at, "guide")  # G again closes it too
    assert not at.get("image")


def test_the_page_scripts_survive_the_html_sanitizer():
    """The page drops a script whose text has "<" directly before a letter or "/"."""
    import re

    from assess.app import screen

    for script in (screen.ZOOM_JS, (rate.APP_SCRIPT.parent / "key_guard.js").read_text()):
        assert not re.search(r"<[/\w]", script)


def test_a_title_names_the_view_beside_the_region_only_when_the_region_has_views():
    from assess.app import screen

    assert screen.title("face", "Wrinkle Severity Rating Scale") == \
        "Face — Wrinkle Severity Rating Scale"
    assert screen.title("upper-arm", "Own scale", "left_oblique") == \
        "Upper arm · left oblique — Own scale"
    assert screen.title("hands", "left and right photo", "right") == \
        "Hands · right — left and right photo"
