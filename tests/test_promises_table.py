"""``tests/README.md`` maps the README's promises to the tests that prove them: every test id
it names exists, and every test of a ``test_promises_*.py`` module is in it."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Final

TESTS: Final = Path(__file__).resolve().parent
TABLE: Final = TESTS / "README.md"
TEST_ID: Final = re.compile(r"`([\w/]+\.py)::(test_\w+)`")


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def test_every_test_id_in_the_table_names_a_test_that_exists() -> None:
    named = TEST_ID.findall(TABLE.read_text(encoding="utf-8"))
    assert len(named) > 100
    missing = [
        f"{file}::{name}"
        for file, name in named
        if not (TESTS / file).is_file() or name not in defined_tests(TESTS / file)
    ]
    assert missing == [], f"tests/README.md names tests that do not exist: {missing}"


def test_every_promise_test_is_in_the_table() -> None:
    named = set(TEST_ID.findall(TABLE.read_text(encoding="utf-8")))
    unlisted = [
        f"{path.relative_to(TESTS)}::{name}"
        for path in sorted(TESTS.rglob("test_promises_*.py"))
        if path != Path(__file__).resolve()
        for name in sorted(defined_tests(path))
        if (str(path.relative_to(TESTS)), name) not in named
    ]
    assert unlisted == [], f"add these to tests/README.md: {unlisted}"
