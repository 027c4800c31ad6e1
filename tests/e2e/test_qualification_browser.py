"""A whole trial with qualification in a real browser: three raters train against the sealed
reference (one fails once, then passes), rate the live worklist, one photo goes to the
adjudicator, who records it, and the set is scored on the consensus.

One ``assess rate --reference`` server serves the whole file. With ``ASSESS_SCREENSHOTS=docs`` the
feedback after a training photo is copied to ``docs/training-feedback.png``.
"""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from assess import training
from assess.blind import randomize, read_reference_key
from assess.cli import cli
from assess.rate import load_rater_set
from assess.synth import make_study

from test_panel_browser import publish
from test_rating_browser import wait_ready, wait_seen

# One worker runs the whole module (pytest-xdist --dist loadgroup): its module-scoped set and
# server are built once.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("qualification_browser")]

HERE = Path(__file__).resolve().parent
SECTIONS = '''
[rating]
min_view_ms = 150

[qualification]
min_exact = 0.75
attempts = 2
feedback = "each"

[consensus]
rule = "median"

[adjudication]
adjudicator = "derm9"
min_difference = 2
'''
RATERS = ("derm1", "derm2", "derm3")


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


e2e = _load(HERE / "conftest.py", "assess_e2e_servers_qualification")
rater_sets = _load(HERE.parent / "rater_sets.py", "assess_rater_sets_qualification")


@pytest.fixture(scope="module")
def trial(tmp_path_factory):
    """2 participants x face x 2 visits, three raters and an adjudicator, four training photos;
    one server with the reference for the whole file."""
    tmp = tmp_path_factory.mktemp("qualification")
    synth = make_study(tmp / "images", participants=2, size=(480, 360), regions={"face": "wsrs"},
                       repeat_fraction=0, raters=RATERS, heic_fraction=0)
    rater_sets.add_reference_photos(synth.study_path, "face", (1, 2, 4, 5), (480, 360))
    with open(synth.study_path, "a", encoding="utf-8") as fh:
        fh.write(SECTIONS)
    built = randomize(synth.study_path, synth.root, tmp / "sets", set_id="qual1", seed=23,
                      workers=1)
    db = tmp / "results" / "ratings.sqlite"
    db.parent.mkdir()
    server = e2e.RaterServer(built.rater_dir, db, tmp)
    server.extra = ["--reference", str(built.key_dir / "reference.csv")]
    server.start()
    with open(built.key_dir / "access.csv", encoding="utf-8-sig") as fh:
        access = {r["rater"]: r["access_code"] for r in csv.DictReader(fh)}
    with open(built.key_dir / "adjudicator.csv", encoding="utf-8-sig") as fh:
        access["derm9"] = next(csv.DictReader(fh))["access_code"]
    reference = {r.code: int(r.score) for r in read_reference_key(built.key_dir / "reference.csv")}
    yield server, built, db, access, reference, tmp
    server.stop()


def _sign_in(page, server, who: str, code: str) -> None:
    page.goto(server.url + "/")
    wait_ready(page, item="__signin__")
    page.get_by_label("Rater id").fill(who)
    page.get_by_label("Access code").fill(code)
    page.get_by_label("Access code").press("Enter")
    page.wait_for_selector('.assess-ready:not([data-item="__signin__"]):not([data-item="__session__"])',
                           state="attached")


def _train(page, trainee: training.Trainee, attempt: int, right: bool, reference, shot=None):
    """Answer every photo of the attempt by keyboard, reading the feedback after each."""
    wl = trainee.worklist(attempt)
    page.locator("button kbd").first.wait_for()  # the widgets' code is loaded
    for n, it in enumerate(wl.items):
        wait_ready(page, item=it.item, rated=n, mode="training")
        wait_seen(page, it.item)
        ref = reference[it.item]
        answer = ref if right else ref % 5 + 1
        page.keyboard.press(str(answer))
        wait_ready(page, item=it.item, mode="training-feedback")
        text = page.locator("body").inner_text()
        assert f"Reference: {ref} ·" in text and f"Your score: {answer} ·" in text
        if shot is not None and n == 0:
            page.wait_for_timeout(200)
            page.screenshot(path=str(shot))
            publish(shot, "training-feedback.png")
        page.locator(".st-key-train-next button").click()
    wait_ready(page, item=f"__attempt-{attempt}__", mode="training-result")


def _rate_live(page, rs, rater: str, scores: dict[str, int]) -> None:
    wl = rs.worklist(rater)
    for n, it in enumerate(wl.items):
        wait_ready(page, item=it.item, rated=n, mode="rate")
        page.keyboard.press(str(scores[it.item]))
    wait_ready(page, item="__summary__", rated=len(wl.items))


def test_a_rater_sees_no_reference_before_answering_and_fails_then_passes_then_rates_live(
        trial, new_page):
    server, built, db, access, reference, tmp = trial
    rs = load_rater_set(built.rater_dir)
    me = training.Trainee(rs, "derm1", db, reference)
    page = new_page()
    _sign_in(page, server, "derm1", access["derm1"])
    first = me.worklist(1).items[0].item
    wait_ready(page, item=first, rated=0, mode="training")
    assert "Reference" not in page.locator("body").inner_text()
    _train(page, me, 1, right=False, reference=reference, shot=tmp / "training-feedback.png")
    assert "Not qualified on this attempt" in page.locator("body").inner_text()
    # a reload resumes from the database: the next attempt, in a new order under new codes
    page.reload()
    second = me.worklist(2).items[0].item
    wait_ready(page, item=second, rated=0, mode="training")
    assert second not in {it.item for it in me.worklist(1).items}
    _train(page, me, 2, right=True, reference=reference)
    assert "You qualified" in page.locator("body").inner_text()
    page.locator(".st-key-train-live button").click()
    live = {it.item: 3 for it in rs.worklist("derm1").items}
    _rate_live(page, rs, "derm1", live)
    assert me.standing().state == "qualified" and len(me.results()) == 2


def test_the_other_raters_pass_at_once_and_one_of_them_sends_a_photo_to_adjudication(
        trial, new_page):
    server, built, db, access, reference, tmp = trial
    rs = load_rater_set(built.rater_dir)
    disputed = rs.worklist("derm1").items[0].item
    for rater in ("derm2", "derm3"):
        me = training.Trainee(rs, rater, db, reference)
        page = new_page()
        _sign_in(page, server, rater, access[rater])
        _train(page, me, 1, right=True, reference=reference)
        page.locator(".st-key-train-live button").click()
        live = {it.item: 3 for it in rs.worklist(rater).items}
        if rater == "derm3":
            live[disputed] = 5
        _rate_live(page, rs, rater, live)
        assert me.standing().state == "qualified" and len(me.results()) == 1
    for rater in RATERS:
        rs.worklist(rater).sign_and_lock(db, code=access[rater])
    result = CliRunner().invoke(cli, ["status", str(rs.root), "--db", str(db)])
    assert "derm1  qualified  attempts 2/2" in result.output
    assert "1 photo(s) sent by the panel's scores" in result.output


def test_the_adjudicator_records_the_disputed_photo_and_the_score_uses_the_consensus(
        trial, new_page):
    server, built, db, access, reference, tmp = trial
    rs = load_rater_set(built.rater_dir)
    disputed = rs.worklist("derm1").items[0].item
    page = new_page()
    _sign_in(page, server, "derm9", access["derm9"])
    wait_ready(page, item=disputed, mode="adjudicate")
    assert "Panel scores: 3 · 3 · 5" in page.locator("body").inner_text()
    page.locator(".st-key-adj-reason input").fill("fold deeper than the panel's median")
    page.locator(".st-key-adj-reason input").press("Enter")
    page.wait_for_timeout(300)
    page.locator(".st-key-adj-level-4 button").click()
    wait_ready(page, item="__summary__", mode="adjudication-summary")

    out = tmp / "scored"
    result = CliRunner().invoke(cli, ["score", "--rater-dir", str(built.rater_dir), "--key",
                                      str(built.key_dir), "--db", str(db), "--out", str(out)])
    assert result.exit_code == 0, result.output
    items = pd.read_csv(out / "panel_scores.csv", encoding="utf-8-sig").set_index("item")
    assert (items.loc[disputed, "final"], items.loc[disputed, "source"]) == (4, "adjudicated")
    summary = pd.read_csv(out / "summary.csv", encoding="utf-8-sig")
    assert summary["rater"].iloc[0] == "consensus"
    qual = pd.read_csv(out / "qualification.csv", encoding="utf-8-sig")
    assert [(r.rater, r.attempt, bool(r.passed)) for r in qual.itertuples()] == [
        ("derm1", 1, False), ("derm2", 1, True), ("derm3", 1, True), ("derm1", 2, True)]
    long = pd.read_csv(out / "ratings_long.csv", encoding="utf-8-sig")
    assert not set(long["code"].astype(str)) & set(reference)
