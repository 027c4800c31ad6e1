"""Worklist files read as columns, here or in a child process."""

from __future__ import annotations

import json
import sys

import pytest

from assess import worklists

ITEMS = [
    {"item": "KX7-4MPA", "kind": "single", "scale": "wsrs", "region": "face", "photos": ["KX7-4MPA"]},
    {"item": "P3C-9TRW", "kind": "pair", "scale": "gais", "region": "neck",
     "photos": ["AH4-7NXE", "RM9-3UFT"]},
]


def write(path, items=ITEMS, **extra):
    path.write_text(json.dumps({"rater": "derm1", "set_id": "S1", "items": items, **extra}))
    return path


def test_a_worklist_becomes_columns_with_an_empty_right_photo_for_single_items(tmp_path):
    got = worklists.read(write(tmp_path / "derm1.json"))
    assert got["rater"] == "derm1" and got["set_id"] == "S1"
    assert got["columns"] == {"item": ["KX7-4MPA", "P3C-9TRW"], "kind": ["single", "pair"],
                              "scale": ["wsrs", "gais"], "region": ["face", "neck"],
                              "left": ["KX7-4MPA", "AH4-7NXE"], "right": ["", "RM9-3UFT"]}


@pytest.mark.parametrize("item", [
    {"item": "KX7-4MPA", "kind": "single", "scale": "wsrs", "photos": ["KX7-4MPA"]},
    {"item": "KX7-4MPA", "kind": "single", "scale": "wsrs", "region": None, "photos": ["KX7-4MPA"]},
    {"item": "KX7-4MPA", "kind": "single", "scale": "wsrs", "region": "face", "photos": []},
    {"item": "", "kind": "single", "scale": "wsrs", "region": "face", "photos": ["KX7-4MPA"]},
])
def test_an_item_lacking_a_field_is_refused(tmp_path, item):
    with pytest.raises(ValueError):
        worklists.read(write(tmp_path / "derm1.json", [item]))


def test_the_child_process_reads_what_this_one_reads_and_none_for_a_damaged_file(tmp_path):
    good = write(tmp_path / "derm1.json")
    bad = tmp_path / "derm2.json"
    bad.write_text('{"items": [{"item": "KX7')
    with worklists.Reader([good, bad]) as reader:
        got = reader.result()
    assert got == [worklists.read(good), None]


def test_a_child_that_cannot_start_gives_no_result(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    with worklists.Reader([write(tmp_path / "derm1.json")]) as reader:
        assert reader.result() is None
