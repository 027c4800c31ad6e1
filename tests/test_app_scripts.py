"""The rating page's scripts survive the page's HTML sanitizer (DOMPurify drops a script whose
text holds ``<`` directly followed by a letter or ``/``, as a tag would start)."""

import re
from pathlib import Path

import pytest

APP = Path(__file__).parent.parent / "assess" / "app"


@pytest.mark.parametrize("name", ["key_guard.js", "entry.js", "zoom.js", "hint.js"])
def test_no_script_of_the_page_holds_text_the_sanitizer_would_take_for_a_tag(name):
    text = (APP / name).read_text(encoding="utf-8")
    assert not re.search(r"<[/\w!]", text), f"{name}: write '< ' with a space, or reword"
