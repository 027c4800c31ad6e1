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
