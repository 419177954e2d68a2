"""The generated character tables of the SQL value rules (store/gen_unicode_tables.py): the
committed file is what the script writes with this Python, as CI's `--check` requires."""

from __future__ import annotations

from pathlib import Path

import pytest

from store import gen_unicode_tables as gen


def test_the_committed_file_is_fresh(capsys: pytest.CaptureFixture[str]) -> None:
    assert gen.main(["--check"]) == 0, capsys.readouterr().err


def test_check_fails_on_a_stale_file_and_writing_makes_it_fresh(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tables.sql"
    assert gen.main(["--check", "--output", str(out)]) == 1  # missing
    out.write_text(gen.OUTPUT.read_text(encoding="utf-8").replace("\\u00DF", "\\u00DE"))
    assert gen.main(["--check", "--output", str(out)]) == 1
    assert "is stale" in capsys.readouterr().err
    assert gen.main(["--output", str(out)]) == 0
    assert gen.main(["--check", "--output", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == gen.OUTPUT.read_text(encoding="utf-8")


def test_the_tables_are_the_python_rules() -> None:
    """Spot checks of what the tables hold (tests/pipelines/test_preview.py compares the SQL
    functions with Python for every character)."""
    longer, single = gen.folds()
    assert {"\u00df": "ss", "\u0130": "i\u0307", "\ufb03": "ffi"}.items() <= dict(longer).items()
    assert {"A": "a", "\u212a": "k", "\u03c2": "\u03c3"}.items() <= dict(single).items()
    assert [len(f) > 1 for _, f in longer + single] == [True] * len(longer) + [False] * len(single)
    spaces = gen.whitespace()
    assert spaces == "".join(c for c in map(chr, range(0x3001)) if c.isspace())
    digits = dict(gen.digits())
    assert {"\u0661": "1", "\uff19": "9", "\U0001d7ce": "0"}.items() <= digits.items()
    assert set(digits.values()) == set("0123456789")
