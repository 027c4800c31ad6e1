"""The report opens in a real Chromium without a single request leaving the file."""

from __future__ import annotations

import pytest

from assess.score import score
from score_fixtures import make_set, rate_all, write_ratings

# One worker runs the whole module (pytest-xdist --dist loadgroup): its module-scoped set and
# server are made once.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("report_e2e")]


def _score(tmp, arms: tuple[str, str], comment: str | None = None):
    ps = [f"P{i:02d}" for i in range(1, 13)]
    fx = make_set(tmp / "sets", participants=ps, regions={"face": "wsrs", "hands": "merz-hand"},
                  raters=("derm1", "derm2"), repeat=[(p, "baseline", "face") for p in ps[:4]])
    base = dict(zip(ps, [4, 3, 4, 2, 3, 4, 3, 2, 4, 3, 4, 3]))
    gain = dict(zip(ps, [1, 0, 2, 1, 1, 0, 1, 1, 2, 0, 1, 1]))
    level = lambda s: base[s[0]] - (gain[s[0]] if s[1] == "month12" else 0)  # noqa: E731
    rows = rate_all(fx, "derm1", level) + rate_all(fx, "derm2", level)
    if comment is not None:
        rows[0]["comment"] = comment
    ratings = write_ratings(tmp / "ratings.csv", rows, ("rater", "code", "score", "comment"))
    parts = tmp / "participants.csv"
    parts.write_text("participant,arm\n" + "".join(f"{p},{arms[i % 2]}\n" for i, p in enumerate(ps)))
    result = score(fx.rater_dir, fx.key_dir, tmp / "out", ratings=ratings, participants=parts)
    return result.out / "report.html"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """Two arms, one of them named with markup, and a comment with a script in it."""
    return _score(tmp_path_factory.mktemp("report"),
                  ("<img src=https://example.org/x.png>", "UC-MSC secretome"),
                  comment="<script>fetch('https://example.org/leak')</script>")


@pytest.fixture(scope="module")
def plain_report(tmp_path_factory):
    """Two arms with names as a trial gives them."""
    return _score(tmp_path_factory.mktemp("plain"), ("vehicle control", "UC-MSC secretome"))


def test_the_report_opens_with_no_request_but_the_file_itself(browser, report):
    context = browser.new_context()
    requests = []
    context.on("request", lambda r: requests.append(r.url))
    page = context.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(report.as_uri())
    page.wait_for_load_state("networkidle")
    assert requests == [report.as_uri()]
    assert errors == []
    context.close()


def test_the_report_shows_its_tables_and_charts(browser, report):
    context = browser.new_context()
    page = context.new_page()
    page.goto(report.as_uri())
    assert page.locator("h2").all_inner_texts()[:4] == ["Integrity", "Warnings and exclusions",
                                                        "Methods", "Results by region"]
    assert page.locator("figure.chart svg").count() >= 6
    box = page.locator("figure.chart svg").first.bounding_box()
    assert box["width"] > 100 and box["height"] > 50
    assert "Wilcoxon signed-rank" in page.locator("table").nth(2).inner_text()
    context.close()


def test_text_from_the_inputs_is_shown_as_text_not_run(browser, report):
    context = browser.new_context()
    page = context.new_page()
    page.goto(report.as_uri())
    assert page.locator("script").count() == 0
    assert page.locator("img").count() == 0
    assert "<img src=https://example.org/x.png>" in page.locator("body").inner_text()
    context.close()


def test_the_results_tables_fit_a_1280_pixel_wide_window(browser, plain_report):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(plain_report.as_uri())
    tables = page.locator("div.scroll")
    assert tables.count() >= 4
    widths = tables.evaluate_all("els => els.map(e => [e.scrollWidth, e.clientWidth])")
    assert all(scroll <= client for scroll, client in widths), widths
    context.close()
