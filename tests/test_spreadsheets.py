"""Text made inert for spreadsheets (core/spreadsheets.py), shared by exports and payment files."""

from __future__ import annotations

import pytest

from core.spreadsheets import neutralise


@pytest.mark.parametrize("text, kept", [
    ('=HYPERLINK("http://evil.example","click")', False),
    ("@SUM(A1:A9)", False),
    ("-2+3+cmd|' /C calc'!A0", False),
    ("+cmd|' /C calc'!A0", False),
    ("\t=1+1", False),
    ("\r=1+1", False),
    ("+257 79 000 001", True),
    ("-12.50", True),
    ("+1+1", False),          # arithmetic is a formula
    ("+257-79", False),
])
def test_formulas_are_quoted_and_plain_numbers_may_stay(text, kept):
    assert neutralise(text) == "'" + text  # exports, read by people: always quoted
    assert neutralise(text, keep_numbers=True) == (text if kept else "'" + text)


@pytest.mark.parametrize("text", ["Ndayisenga", "", "a=b", "PAY-0001", "12", "'quoted"])
def test_ordinary_text_is_unchanged(text):
    assert neutralise(text) == text == neutralise(text, keep_numbers=True)
