"""The panel in a real browser: three raters' scores send a photo to the adjudicator, who signs in
to ``assess rate``, sees the photo and the panel's scores without names, records the final score
with a reason and signs; the set is then scored on the consensus.

With ``ASSESS_SCREENSHOTS=docs`` the adjudication screen and the report's panel section are copied
into ``docs/`` (``docs/adjudication-screen.png``, ``docs/report-panel.png``).
"""

from __future__ import annotations

import csv
import importlib.util
import os
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from assess.blind import randomize
from assess.cli import cli
from assess.rate import load_rater_set
from assess.synth import make_study

from test_rating_browser import wait_ready

pytestmark = pytest.mark.e2e

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RULES = '''
[consensus]
rule = "median"

[adjudication]
adjudicator = "derm9"
min_difference = 2
show_scores = true
'''


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


e2e = _load(HERE / "conftest.py", "assess_e2e_servers_panel")


def publish(shot: Path, name: str) -> None:
    target = os.environ.get("ASSESS_SCREENSHOTS")
    if not target:
        return
    folder = Path(target) if Path(target).is_absolute() else ROOT / target
    with Image.open(shot) as img:
        img.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(folder / name,
                                                                              optimize=True)


@pytest.fixture
def panel_server(tmp_path):
    synth = make_study(tmp_path / "images", participants=4, size=(640, 480),
                       regions={"face": "wsrs"}, repeat_fraction=0,
                       raters=("derm1", "derm2", "derm3"))
    with open(synth.study_path, "a", encoding="utf-8") as fh:
        fh.write(RULES)
    built = randomize(synth.study_path, synth.root, tmp_path / "sets", set_id="panel1", seed=11,
                      workers=1)
    db = tmp_path / "results" / "ratings.sqlite"
    db.parent.mkdir()
    rs = load_rater_set(built.rater_dir)
    order = [it.item for it in rs.worklist("derm1").items]
    base = {item: [2, 1, 3, 4, 2, 5, 3, 1][i % 8] for i, item in enumerate(order)}
    disputed = order[0]  # the panel gives 2, 2 and 4
    for rater in ("derm1", "derm2", "derm3"):
        wl = rs.worklist(rater)
        for it in wl.items:
            score = base[it.item]
            if rater == "derm3" and it.item == disputed:
                score = 4
            elif rater == "derm2" and it.item == order[3]:
                score = 5  # one grade off: not adjudicated
            wl.save(db, it.item, score=score)
        code = {r["rater"]: r["access_code"] for r in csv.DictReader(
            open(built.key_dir / "access.csv", encoding="utf-8-sig"))}[rater]
        wl.sign_and_lock(db, code=code)
    with open(built.key_dir / "adjudicator.csv", encoding="utf-8-sig") as fh:
        adj_code = next(csv.DictReader(fh))["access_code"]
    server = e2e.RaterServer(built.rater_dir, db, tmp_path).start()
    yield server, built, db, disputed, adj_code
    server.stop()


def test_the_adjudicator_sees_the_panel_scores_without_names_and_records_the_final_score(
        panel_server, new_page, tmp_path):
    server, built, db, disputed, code = panel_server
    page = new_page()
    page.goto(server.url + "/")
    wait_ready(page, item="__signin__")
    page.get_by_label("Rater id").fill("derm9")
    page.get_by_label("Access code").fill(code)
    page.get_by_label("Access code").press("Enter")
    wait_ready(page, item=disputed, mode="adjudicate")
    page.locator(f'img[data-code="{disputed}"]').wait_for()
    text = page.locator("body").inner_text()
    assert "Panel scores: 2 · 2 · 4" in text
    assert not any(name in text for name in ("derm1", "derm2", "derm3"))
    page.locator(".st-key-adj-reason input").fill("deep fold visible at rest")
    page.locator(".st-key-adj-reason input").press("Enter")
    page.wait_for_timeout(300)
    shot = tmp_path / "adjudication-screen.png"
    page.screenshot(path=str(shot))
    publish(shot, "adjudication-screen.png")
    page.locator(".st-key-adj-level-3 button").click()
    wait_ready(page, item="__summary__", mode="adjudication-summary")
    page.locator(".st-key-adj-submit input, [data-testid='stForm'] input").first.fill(code)
    page.get_by_role("button", name="Submit and lock").click()
    page.get_by_text("Submitted and locked").wait_for()

    out = tmp_path / "scored"
    result = CliRunner().invoke(cli, ["score", "--rater-dir", str(built.rater_dir), "--key",
                                      str(built.key_dir), "--db", str(db), "--out", str(out)])
    assert result.exit_code == 0, result.output
    items = pd.read_csv(out / "panel_scores.csv", encoding="utf-8-sig").set_index("item")
    assert (items.loc[disputed, "final"], items.loc[disputed, "source"]) == (3, "adjudicated")
    assert items.loc[disputed, "scores"] == "2; 2; 4"
    assert items.loc[disputed, "adjudication_reason"] == "deep fold visible at rest"
    summary = pd.read_csv(out / "summary.csv", encoding="utf-8-sig")
    assert summary["rater"].iloc[0] == "consensus"
    report = new_page()
    report.goto((out / "report.html").as_uri())
    report.locator("h2", has_text="Panel").wait_for()
    report.evaluate("[...document.querySelectorAll('h2')].find(h => h.textContent === 'Panel')"
                    ".scrollIntoView()")
    shot = tmp_path / "report-panel.png"
    report.screenshot(path=str(shot))
    publish(shot, "report-panel.png")
