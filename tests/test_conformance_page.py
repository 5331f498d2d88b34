"""The conformance page's "Covered by" column wraps test ids only between words (after a ``/``,
before ``::``, after an ``_`` of a long test name), never inside a word."""

from __future__ import annotations

import re

from tests.test_docs_generation import ROOT, ROWS_FILE, conformance


def test_a_test_id_breaks_only_after_a_slash_or_before_a_double_colon():
    coverage = conformance.Coverage(
        "tests/core/test_discovery.py",
        "TestIssuer::test_a_trailing_slash_is_refused",
        1,
        frozenset(),
    )

    cell = conformance.coverage_html(coverage)

    assert cell == (
        '<code style="word-break:normal">tests/<wbr>core/<wbr>test_discovery.py'
        "<wbr>::TestIssuer<wbr>::test_a_trailing_slash_is_refused</code>"
    )


def test_every_cell_of_the_page_keeps_its_names_whole():
    page = conformance.render(ROOT, ROWS_FILE)
    cells = re.findall(r'<code style="word-break:normal">(.*?)</code>', page)

    assert cells
    assert "`tests/" not in page  # no Markdown code spans, whose words Material cuts anywhere
    for cell in cells:
        for piece in cell.split("<wbr>"):
            assert piece == "" or re.fullmatch(r"(::)?[\w.\-]+[/_]?", piece), (cell, piece)
