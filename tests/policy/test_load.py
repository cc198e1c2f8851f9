"""Loading: shipped policies validate; broken ones refuse to load and say why."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from gateway.policy import PolicyEngine, PolicyLoadError
from tests.policy.conftest import POLICIES, SCHEMA

SHIPPED = sorted(POLICIES.glob("*.cedar"))
SCHEMA_TEXT = SCHEMA.read_text(encoding="utf-8")


def load_text(policy: str, schema: str = SCHEMA_TEXT) -> PolicyEngine:
    return PolicyEngine.from_text(policy.encode(), schema)


def refusal(policy: str, schema: str = SCHEMA_TEXT) -> PolicyLoadError:
    with pytest.raises(PolicyLoadError) as caught:
        load_text(policy, schema)
    return caught.value


def test_every_role_and_the_broker_ship_a_policy() -> None:
    names = {path.name for path in SHIPPED}
    assert names == {
        "broker.cedar",
        "node-bank.cedar",
        "node-carrier.cedar",
        "node-police.cedar",
        "node-regulator.cedar",
    }


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_policy_validates_against_the_schema(path: Path) -> None:
    engine = PolicyEngine.load(path, SCHEMA)
    assert engine.policy_ids
    assert len(set(engine.policy_ids)) == len(engine.policy_ids)
    assert engine.policy_set_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert engine.source == str(path)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_policy_has_an_id_under_a_one_line_comment(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    ids = [i for i, line in enumerate(lines) if line.startswith("@id(")]
    assert len(ids) == len(PolicyEngine.load(path, SCHEMA).policy_ids)
    for i in ids:
        assert re.fullmatch(r"// \S.*", lines[i - 1]), f"{lines[i]} needs a comment above it"
        assert not lines[i - 2].startswith("//"), f"{lines[i]}: comment is longer than a line"


def test_attribute_typo_refuses_to_load_naming_policy_and_attribute() -> None:
    error = refusal(
        '@id("p") permit (principal, action == Gateway::Action::"PING", resource)\n'
        'when { principal.rol == "police" };'
    )
    assert "do not validate" in str(error)
    assert any(d.startswith("p: ") and "`rol`" in d for d in error.diagnostics)


def test_context_field_typo_refuses_to_load() -> None:
    error = refusal(
        '@id("p") permit (principal, action == Gateway::Action::"FREEZE", resource)\n'
        'when { context.legal_bases != "" };'
    )
    assert error.diagnostics
    assert all("`legal_bases`" in d for d in error.diagnostics)


def test_action_typo_refuses_to_load() -> None:
    error = refusal('@id("p") permit (principal, action == Gateway::Action::"FREEZ", resource);')
    assert any('unrecognized action `Gateway::Action::"FREEZ"`' in d for d in error.diagnostics)


def test_role_typo_refuses_to_load() -> None:
    # The schema types roles as strings, so only the engine can catch this one.
    error = refusal(
        '@id("p") permit (principal, action == Gateway::Action::"PING", resource)\n'
        'when { ["police", "bnak"].contains(resource.role) };'
    )
    assert error.diagnostics == ("p: unknown role 'bnak'",)


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ('context.duration_hours <= "48"', "expected Long but saw String"),
        ('context.batch_size == "ten"', "Long and String are not compatible"),
        ("context.case_ref", "expected Bool but saw String"),
        ("principal.role + 1 > 0", "expected Long but saw String"),
    ],
)
def test_type_error_refuses_to_load(condition: str, message: str) -> None:
    error = refusal(
        '@id("typed") permit (principal, action == Gateway::Action::"FREEZE", resource)\n'
        f"when {{ {condition} }};"
    )
    assert "do not validate against the schema" in str(error)
    assert any(d.startswith("typed: ") and message in d for d in error.diagnostics)


def test_syntax_error_refuses_to_load() -> None:
    error = refusal('@id("p") permit (principal, action, resource) when { true }')
    assert "do not parse" in str(error)
    assert error.diagnostics


def test_policy_without_id_refuses_to_load() -> None:
    error = refusal("permit (principal, action, resource);")
    assert error.diagnostics == ("policy0: has no @id annotation",)


def test_duplicate_id_refuses_to_load() -> None:
    error = refusal(
        '@id("p") permit (principal, action, resource);\n'
        '@id("p") forbid (principal, action, resource);'
    )
    assert error.diagnostics == ("p: @id is used twice",)


def test_template_refuses_to_load() -> None:
    error = refusal('@id("t") permit (principal == ?principal, action, resource);')
    assert any("templates are not supported" in d for d in error.diagnostics)


def test_policy_that_is_not_utf8_refuses_to_load() -> None:
    with pytest.raises(PolicyLoadError, match="not UTF-8"):
        PolicyEngine.from_text(b"\xff\xfe", SCHEMA_TEXT)


def test_unparsable_schema_refuses_to_load() -> None:
    error = refusal('@id("p") permit (principal, action, resource);', "namespace {")
    assert "schema does not parse" in str(error)


def test_schema_without_every_message_kind_refuses_to_load() -> None:
    schema = SCHEMA_TEXT.replace('action "AUDIT_READ"', 'action "AUDIT_READING"')
    error = refusal('@id("p") permit (principal, action, resource);', schema)
    assert "does not fit" in str(error)
    assert any(d.startswith("AUDIT_READ: ") for d in error.diagnostics)


def test_schema_with_another_context_refuses_to_load() -> None:
    schema = SCHEMA_TEXT.replace("reply_to: String,", "reply_to: Long,")
    error = refusal('@id("p") permit (principal, action, resource);', schema)
    assert "does not fit" in str(error)


def test_missing_file_refuses_to_load(tmp_path: Path) -> None:
    with pytest.raises(PolicyLoadError, match="cannot read"):
        PolicyEngine.load(tmp_path / "absent.cedar", SCHEMA)


def test_diagnostics_are_in_the_message() -> None:
    error = refusal("permit (principal, action, resource);")
    assert str(error).endswith("\n  policy0: has no @id annotation")
