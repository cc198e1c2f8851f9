"""Holders' names compare as a bank clerk would: width, spaces, interpuncts and script."""

from __future__ import annotations

import pytest

from gateway.names import same_holder


@pytest.mark.parametrize(
    ("stated", "on_record"),
    [
        ("張偉", "张伟"),  # traditional -> simplified
        ("陳 國華", "陈国华"),
        ("张　伟", "张伟"),  # an ideographic (full-width) space
        (
            "\uff3a\uff28\uff21\uff2e\uff27\u3000\uff37\uff45\uff49",
            "zhang wei",
        ),  # full-width Latin letters, case
        ("买买提·艾力", "买买提艾力"),  # the interpunct of minority names
        ("买买提・艾力", "买买提·艾力"),
    ],
)
def test_spellings_of_one_name_match(stated: str, on_record: str) -> None:
    assert same_holder(stated, on_record)


@pytest.mark.parametrize(
    ("stated", "on_record"),
    [("张伟", "张纬"), ("李四", "张伟"), ("", ""), (" ", "")],
)
def test_other_or_empty_names_do_not(stated: str, on_record: str) -> None:
    assert not same_holder(stated, on_record)
