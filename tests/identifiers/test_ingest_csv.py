"""CSV ingestion: valid rows load, bad rows are reported by line and reason, not value."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from gateway.identifiers import Identifier, IdentifierKind
from gateway.ingest_csv import IngestError, RejectedRow, read_identifiers, read_records

GOOD_AND_BAD = (
    "kind,value,record_id,status,opened_on,holder_name\n"  # line 1
    "phone,138 0013 8000,C1,ACTIVE,2020-01-02,张三\n"  # 2 ok
    "id_card,11010519491231002X,C1,ACTIVE,2020-01-02,张三\n"  # 3 ok
    "id_card,110105194912310021,C2,ACTIVE,2020-01-02,李四\n"  # 4 bad check digit
    "\n"  # 5 blank, skipped
    "bank_card,4111 1111 1111 1111,B1,DORMANT,2011-05-06,王五\n"  # 6 ok
    "bank_card,4111 1111 1111 1112,B2,ACTIVE,2011-05-06,王五\n"  # 7 bad Luhn
    "passport,E12345678,P1,ACTIVE,2011-05-06,赵六\n"  # 8 unknown kind
    "phone,13800138001,C3,ACTIVE\n"  # 9 too few fields
    'bank_account,GB82 WEST 1234 5698 7654 32,B3,ACTIVE,2019-09-09,"Smith, John"\n'  # 10 ok
    "phone,,C4,ACTIVE,2020-01-02,钱七\n"  # 11 empty value
    'phone,+86 139 0000 0000,C5,ACTIVE,2020-01-02,"multi\nline name"\n'  # 12-13 ok
    "phone,1390000000,C6,ACTIVE,2020-01-02,孙八\n"  # 14 too short
)


def test_good_and_bad_rows() -> None:
    result = read_records(io.StringIO(GOOD_AND_BAD, newline=""))

    assert [(r.line, r.identifier.kind, r.identifier.value) for r in result.records] == [
        (2, IdentifierKind.PHONE, "+8613800138000"),
        (3, IdentifierKind.ID_CARD, "11010519491231002X"),
        (6, IdentifierKind.BANK_CARD, "4111111111111111"),
        (10, IdentifierKind.BANK_ACCOUNT, "GB82WEST12345698765432"),
        (12, IdentifierKind.PHONE, "+8613900000000"),
    ]
    assert result.rejected == [
        RejectedRow(4, "invalid id_card: check digit does not match"),
        RejectedRow(7, "invalid bank_card: Luhn check digit does not match"),
        RejectedRow(
            8,
            "unknown identifier kind 'passport'; expected one of: "
            "phone, id_card, bank_card, bank_account",
        ),
        RejectedRow(9, "row has 4 fields, header has 6"),
        RejectedRow(11, "invalid phone: value is empty"),
        RejectedRow(14, "invalid phone: not a valid number for its country"),
    ]
    assert str(result.rejected[0]) == "line 4: invalid id_card: check digit does not match"
    assert result.rows_read == 11
    assert result.attribute_columns == ("record_id", "status", "opened_on", "holder_name")
    assert result.records[0].attributes == {
        "record_id": "C1",
        "status": "ACTIVE",
        "opened_on": "2020-01-02",
        "holder_name": "张三",
    }
    assert result.records[3].attributes["holder_name"] == "Smith, John"
    assert result.records[4].attributes["holder_name"] == "multi\nline name"
    assert result.identifiers[0] == Identifier(IdentifierKind.PHONE, "+8613800138000")


def test_rejection_reasons_contain_no_values() -> None:
    result = read_records(io.StringIO(GOOD_AND_BAD, newline=""))
    values = re.findall(r"\d{4,}", GOOD_AND_BAD)
    for row in result.rejected:
        assert not any(v[:4] in row.reason for v in values), row


def test_path_with_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(
        "\ufeffKind , Value,record_id\r\nphone,13800138000,R1\r\nphone,12,R2\r\n".encode()
    )
    result = read_records(path)
    assert [r.identifier.value for r in result.records] == ["+8613800138000"]
    assert [r.line for r in result.rejected] == [3]
    assert result.attribute_columns == ("record_id",)
    assert read_records(str(path)).identifiers == result.identifiers


def test_columns_in_any_order() -> None:
    text = "record_id,value,kind\nR1,13800138000,phone\n"
    result = read_records(io.StringIO(text))
    assert result.records[0].identifier.value == "+8613800138000"
    assert result.records[0].attributes == {"record_id": "R1"}


def test_kind_and_value_only() -> None:
    result = read_records(io.StringIO("kind,value\nphone,13800138000\n"))
    assert result.records[0].attributes == {}


@pytest.mark.parametrize("text", ["", "\n\n  \n", ",,\n"])
def test_empty_file_is_an_error(text: str) -> None:
    with pytest.raises(IngestError, match="empty"):
        read_records(io.StringIO(text))


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("kind,record_id", "missing column\\(s\\) value"),
        ("value", "missing column\\(s\\) kind"),
        ("13800138000", "missing column\\(s\\) kind, value"),
        ("kind,value,,status", "empty column name"),
        ("kind,value,status,Status", "duplicate column\\(s\\) status"),
    ],
)
def test_bad_header_is_an_error(header: str, message: str) -> None:
    with pytest.raises(IngestError, match=message) as info:
        read_records(io.StringIO(header + "\nphone,13800138000,x\n"))
    assert "line 1" in str(info.value)
    assert "13800138000" not in str(info.value)


def test_malformed_csv_is_an_error() -> None:
    text = 'kind,value\nphone,"13800138000"x\n'
    with pytest.raises(IngestError, match="line 2: malformed CSV"):
        read_records(io.StringIO(text), max_rows=None)


def test_max_rows() -> None:
    text = "kind,value\n" + "phone,13800138000\n" * 3
    assert read_records(io.StringIO(text), max_rows=3).rows_read == 3
    with pytest.raises(IngestError, match="more than 2 data rows"):
        read_records(io.StringIO(text), max_rows=2)


def test_default_region() -> None:
    text = "kind,value\nphone,(650) 253-0000\n"
    assert read_records(io.StringIO(text)).rejected
    result = read_records(io.StringIO(text), default_region="US")
    assert result.identifiers[0].value == "+16502530000"


def test_stream_is_left_open() -> None:
    stream = io.StringIO("kind,value\nphone,13800138000\n")
    read_records(stream)
    assert not stream.closed


# --- query files --------------------------------------------------------------------------


def test_read_identifiers_plain_list(tmp_path: Path) -> None:
    path = tmp_path / "query.txt"
    path.write_text("# suspects\n138 0013 8000\n\n+86 139 0000 0000\n12345\n")
    result = read_identifiers(path, "phone")
    assert [i.value for i in result.identifiers] == ["+8613800138000", "+8613900000000"]
    assert result.rejected == [RejectedRow(5, "invalid phone: not a valid number for its country")]


def test_read_identifiers_plain_list_needs_kind() -> None:
    with pytest.raises(IngestError, match="kind"):
        read_identifiers(io.StringIO("13800138000\n"))


def test_read_identifiers_csv_format() -> None:
    text = "kind,value\nphone,13800138000\nid_card,130503670401001\n"
    result = read_identifiers(io.StringIO(text))
    assert [i.value for i in result.identifiers] == ["+8613800138000", "130503196704010016"]


def test_read_identifiers_csv_with_expected_kind() -> None:
    text = "kind,value\nid_card,130503670401001\nphone,13800138000\nphone,12345\n"
    result = read_identifiers(io.StringIO(text), IdentifierKind.PHONE)
    assert [i.value for i in result.identifiers] == ["+8613800138000"]
    assert result.rejected == [
        RejectedRow(2, "expected kind phone, got id_card"),
        RejectedRow(4, "invalid phone: not a valid number for its country"),
    ]


def test_read_identifiers_line_numbers_count_cr_and_crlf() -> None:
    result = read_identifiers(io.StringIO("1\r\n13800138000\r2\n", newline=""), "phone")
    assert [r.line for r in result.records] == [2]
    assert [r.line for r in result.rejected] == [1, 3]


def test_read_identifiers_empty_file() -> None:
    with pytest.raises(IngestError, match="empty"):
        read_identifiers(io.StringIO("\n\n"), "phone")


def test_read_identifiers_max_rows() -> None:
    with pytest.raises(IngestError, match="more than 1 data rows"):
        read_identifiers(io.StringIO("13800138000\n13900000000\n"), "phone", max_rows=1)


def test_bom_in_a_stream_before_padded_header() -> None:
    result = read_records(io.StringIO("\ufeff kind , value\nphone,13800138000\n"))
    assert result.identifiers == [Identifier(IdentifierKind.PHONE, "+8613800138000")]


def test_non_utf8_file_is_an_error_without_its_bytes(tmp_path: Path) -> None:
    # Spreadsheet exports on Chinese Windows default to GBK.
    path = tmp_path / "gbk.csv"
    path.write_bytes("kind,value,holder_name\nphone,13800138000,张三\n".encode("gbk"))
    for read in (read_records, lambda p: read_identifiers(p, "phone")):
        with pytest.raises(IngestError, match="not UTF-8") as info:
            read(path)
        message = str(info.value)
        assert "0x" not in message and "\\x" not in message
        assert info.value.__suppress_context__


def test_unknown_default_region_is_not_a_row_rejection() -> None:
    with pytest.raises(ValueError, match="unsupported default phone region") as info:
        read_records(io.StringIO("kind,value\nphone,13800138000\n"), default_region="XX")
    assert not isinstance(info.value, IngestError)
