"""Every template compiles (a syntax error would otherwise be a 500 on first use) and autoescape is on."""

from __future__ import annotations

import pytest

from kb.web.templating import TEMPLATES, environment

NAMES = sorted(p.name for p in TEMPLATES.glob("*.html"))


@pytest.mark.parametrize("name", NAMES)
def test_template_compiles(name: str) -> None:
    environment().get_template(name)


def test_autoescape_is_on_for_every_template() -> None:
    env = environment()
    assert len(NAMES) >= 12
    assert all(env.autoescape(name) is True for name in NAMES)  # type: ignore[operator]
    assert env.from_string("{{ x }}").render(x="<script>") == "&lt;script&gt;"
