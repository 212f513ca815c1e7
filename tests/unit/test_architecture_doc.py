"""docs/architecture.md's generated tables match the code: every route, config key and error class.

When this fails, run `python -m gateway.docs_gen` and commit docs/architecture.md.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from gateway import docs_gen


@pytest.fixture(scope="module")
def app() -> Flask:
    return docs_gen.docs_app()


@pytest.fixture(scope="module")
def page() -> str:
    return docs_gen.DOC.read_text(encoding="utf-8")


def test_the_page_lists_every_route_config_key_and_error_the_code_has(app: Flask, page: str) -> None:
    assert docs_gen.stale_blocks(page, docs_gen.generated_blocks(app)) == []


def test_every_config_key_and_error_class_is_documented_in_the_code() -> None:
    undocumented_keys = [key for key, _, _, what in docs_gen.config_rows() if not what]
    assert undocumented_keys == [], "give each key a comment in gateway/settings.py (above or after the field)"
    silent_errors = [cls for cls, *_, when in docs_gen.error_rows() if not when]
    assert silent_errors == [], "give each error class a docstring saying when it is raised"


def test_the_check_names_a_missing_route_a_missing_key_and_a_stale_error(app: Flask, page: str) -> None:
    extra = docs_gen.docs_app()

    def shadow_route() -> Any:
        """A route the page does not know."""

    extra.add_url_rule("/shadow", "shadow", shadow_route)
    blocks = docs_gen.generated_blocks(extra)
    key_row = next(line for line in page.splitlines() if line.startswith("| `server.port`"))
    error_row = "| `Teapot` | 418 | `teapot` | I'm a teapot | `INTERNAL_ERROR` | Never. |"
    edited = page.replace(key_row + "\n", "")
    edited = edited.replace("<!-- /generated:errors -->", f"{error_row}\n<!-- /generated:errors -->")

    problems = docs_gen.stale_blocks(edited, blocks)

    assert problems == [
        "routes: missing from the page: | GET | `/shadow` | `shadow` | A route the page does not know. |",
        f"config: missing from the page: {key_row}",
        f"errors: stale on the page (not in the code): {error_row}",
    ]


def test_rewrite_fills_the_blocks_and_keeps_the_hand_written_text(app: Flask) -> None:
    blocks = docs_gen.generated_blocks(app)
    skeleton = "".join(f"## {name}\nby hand\n<!-- generated:{name} -->\nSTALE ROW\n<!-- /generated:{name} -->\n"
                       for name in blocks)
    written = docs_gen.rewrite(skeleton, blocks)
    assert docs_gen.stale_blocks(written, blocks) == []
    assert written.count("by hand") == len(blocks) and "STALE ROW" not in written
    with pytest.raises(ValueError, match="generated:routes"):
        docs_gen.rewrite("no markers", blocks)


def test_a_fields_comments_above_and_after_it_are_its_documentation() -> None:
    source = (
        "class S:\n"
        "    plain: int = 1\n"
        "    # why it exists,\n"
        "    # over two lines\n"
        "    port: int = 80  # and a unit\n"
        "    # a stray comment, then a blank line\n"
        "\n"
        "    host: str = ''\n"
    )
    assert docs_gen.field_comments(source) == {
        ("S", "plain"): "",
        ("S", "port"): "why it exists, over two lines and a unit",
        ("S", "host"): "",
    }
