"""`fail`: a user's mistake reaches them as one unwrapped `error:` line, shown as written."""

from __future__ import annotations

import pytest
import typer

from gateway.cli.common import fail


def test_a_long_message_with_brackets_stays_one_intact_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    message = (
        "column 'bal_fenn' named in [adapter_columns] balance_minor is not a column of "
        "table core_accounts; fix the mapping in bank-x.toml and run gateway node check"
    )
    with pytest.raises(typer.Exit) as exit_info:
        fail(message)
    assert exit_info.value.exit_code == 1
    assert capsys.readouterr().err == f"error: {message}\n"
