"""The report's charts: drawn by vl-convert in a child process, or in this one when it cannot run."""

from __future__ import annotations

import sys

from assess.score.report import ChartRenderer

SPEC = {"data": {"values": [{"level": 1, "n": 3}, {"level": 2, "n": 5}]}, "mark": "bar",
        "encoding": {"x": {"field": "level", "type": "ordinal"},
                     "y": {"field": "n", "type": "quantitative"}}}


def test_the_child_process_draws_every_spec_in_order():
    other = {**SPEC, "mark": "point"}
    with ChartRenderer() as renderer:
        renderer.submit([SPEC, other])
        bar, point = renderer.result()
    assert bar.startswith("<svg") and point.startswith("<svg")
    assert "mark-rect" in bar and "mark-symbol" in point


def test_the_charts_are_drawn_here_when_no_child_process_can_start(monkeypatch):
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    with ChartRenderer() as renderer:
        renderer.submit([SPEC])
        svg, = renderer.result()
    assert svg.startswith("<svg") and "mark-rect" in svg


def test_a_renderer_given_nothing_draws_nothing_and_leaves_no_child():
    renderer = ChartRenderer()
    assert renderer.result() == []
    renderer.close()
    assert not renderer._child.running and not renderer._child.dir.exists()


# ------------------------------------------------------------------------------ tables


import html as _html  # noqa: E402
import re  # noqa: E402

import pytest  # noqa: E402

from assess.score import score  # noqa: E402
from score_fixtures import make_set, rate_all, write_ratings  # noqa: E402


def _report(tmp, raters, arms, regions=None):
    ps = [f"P{i:02d}" for i in range(1, 9)]
    fx = make_set(tmp / "sets", participants=ps, regions=regions or {"face": "wsrs"},
                  raters=raters, repeat=[(p, "baseline", "face") for p in ps[:3]])
    base = dict(zip(ps, [4, 3, 4, 2, 3, 4, 3, 2]))
    gain = dict(zip(ps, [1, 0, 2, 1, 1, 0, 1, 1]))
    rows = [row for r in raters for row in rate_all(
        fx, r, lambda s: base[s[0]] - (gain[s[0]] if s[1] == "month12" else 0))]
    ratings = write_ratings(tmp / "ratings.csv", rows)
    parts = tmp / "participants.csv"
    parts.write_text("participant,arm\n" + "".join(f"{p},{arms[i % len(arms)]}\n"
                                                   for i, p in enumerate(ps)))
    out = score(fx.rater_dir, fx.key_dir, tmp / "out", ratings=ratings, participants=parts).out
    return (out / "report.html").read_text(encoding="utf-8")


def _cells(page: str, header: str) -> list[str]:
    """The texts of one column of the first table whose header row has ``header``."""
    for table in re.findall(r"<table>.*?</table>", page, flags=re.S):
        heads = [_html.unescape(h) for h in re.findall(r"<th>(.*?)</th>", table)]
        if header in heads:
            i = heads.index(header)
            rows = re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], flags=re.S)
            return [_html.unescape(re.sub(r"<[^>]+>", " ", re.findall(r"<td[^>]*>(.*?)</td>",
                                                                        r, flags=re.S)[i])).strip()
                    for r in rows]
    raise AssertionError(f"no table with {header!r}")


@pytest.fixture(scope="module")
def one_rater_two_arms(tmp_path_factory):
    return _report(tmp_path_factory.mktemp("r1"), ("derm1",), ("vehicle", "secretome"))


@pytest.fixture(scope="module")
def two_raters_one_arm(tmp_path_factory):
    return _report(tmp_path_factory.mktemp("r2"), ("derm1", "derm2"), ("all",))


def test_a_blank_exact_p_says_why(one_rater_two_arms):
    exact = _cells(one_rater_two_arms, "exact p")
    assert sorted(exact) == ["ties", "ties, zero differences"]  # one per arm, as summary.csv
    assert 'class="why">ties, zero differences</td>' in one_rater_two_arms


def test_kappa_columns_name_their_weights_and_show_their_intervals(two_raters_one_arm):
    for header in ("κ unweighted (95% CI)", "κ linear weights (95% CI)",
                   "κ quadratic weights (95% CI)"):
        cells = [c for c in _cells(two_raters_one_arm, header) if c[:1].isdigit() or c[:1] == "−"]
        assert cells and all(re.fullmatch(r"−?\d\.\d{3} +−?\d\.\d{3} to −?\d\.\d{3}", c)
                             for c in cells), (header, cells)
    assert "per rater pair, below" in _cells(two_raters_one_arm, "κ unweighted (95% CI)")


def test_one_rater_gets_a_note_that_icc_and_alpha_cannot_be_computed(one_rater_two_arms,
                                                                     two_raters_one_arm):
    note = "ICC and Krippendorff's α compare raters: this set has one rater (derm1)"
    assert note in _html.unescape(one_rater_two_arms)
    assert "ICC and Krippendorff" not in _html.unescape(two_raters_one_arm).split(
        "<h2>Reliability</h2>")[1].split("</p>")[0]
    assert set(_cells(one_rater_two_arms, "ICC(2,1) (95% CI)")) == {"repeats: κ only"}


def test_the_between_arms_table_appears_once_and_only_with_two_arms(one_rater_two_arms,
                                                                    two_raters_one_arm):
    assert one_rater_two_arms.count("<h2>Between arms</h2>") == 1
    assert "Mann-Whitney U on the change" in one_rater_two_arms
    assert "<h2>Between arms" not in two_raters_one_arm
