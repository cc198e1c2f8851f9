"""GATEWAY_<KEY> overrides: only deployment keys, typed like the file's values."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ENV_KEYS, BrokerConfig, ConfigError, NodeConfig, load_config

NODE_TOML = """
node_id = "bank-a"
role = "bank"
listen = "0.0.0.0:7001"
broker_endpoint = "broker:7000"
database = "bank.db"
pki_bundle = "pki/bank-a"
label_attributes = ["status"]
"""

BROKER_TOML = """
node_id = "broker"
listen = "0.0.0.0:7000"
database = "broker.db"
pki_bundle = "pki/broker"
directory_folder = "pki"
"""


@pytest.fixture
def node_file(tmp_path: Path) -> Path:
    path = tmp_path / "bank-a.toml"
    path.write_text(NODE_TOML)
    return path


@pytest.mark.parametrize(
    "variable",
    [
        "GATEWAY_PKI_BUNDLE",
        "GATEWAY_POLICY",
        "GATEWAY_SCHEMA",
        "GATEWAY_HOLIDAY_CALENDAR",
        "GATEWAY_NODE_ID",
        "GATEWAY_ROLE",
        "GATEWAY_LABEL_ATTRIBUTES",
    ],
)
def test_an_attacker_setting_a_trust_path_or_identity_in_the_environment_is_refused(
    node_file: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str
) -> None:
    monkeypatch.setenv(variable, str(tmp_path / "attacker"))
    with pytest.raises(ConfigError, match=f"{variable} cannot be set from the environment"):
        load_config(NodeConfig, node_file)


def test_the_broker_keeps_its_directory_and_policy_from_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "broker.toml"
    path.write_text(BROKER_TOML)
    for variable in ("GATEWAY_DIRECTORY_FOLDER", "GATEWAY_POLICY", "GATEWAY_PKI_BUNDLE"):
        monkeypatch.setenv(variable, "/tmp/elsewhere")
        with pytest.raises(ConfigError, match=variable):
            load_config(BrokerConfig, path)
        monkeypatch.delenv(variable)
    assert load_config(BrokerConfig, path).directory_folder == tmp_path / "pki"


def test_no_path_key_is_on_the_allow_list() -> None:
    for cls in (NodeConfig, BrokerConfig):
        for name, kind in cls.__annotations__.items():
            if "Path" in str(kind):
                assert name not in ENV_KEYS, name


def test_allowed_overrides_are_typed_like_the_file(
    node_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_DATABASE", "postgresql+psycopg://u@db/bank")
    monkeypatch.setenv("GATEWAY_CALL_TIMEOUT_S", "2.5")
    monkeypatch.setenv("GATEWAY_MATCH_WORKERS", "3")
    monkeypatch.setenv("GATEWAY_CONSOLE_SECURE_COOKIES", "true")
    cfg = load_config(NodeConfig, node_file)
    assert cfg.database == "postgresql+psycopg://u@db/bank"
    assert cfg.call_timeout_s == 2.5
    assert cfg.match_workers == 3
    assert cfg.console_secure_cookies is True
    assert cfg.pki_bundle == node_file.parent / "pki" / "bank-a"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GATEWAY_MATCH_WORKERS", "three"),
        ("GATEWAY_CALL_TIMEOUT_S", "true"),
        ("GATEWAY_CONSOLE_SECURE_COOKIES", "1"),
        ("GATEWAY_CONSOLE_SECURE_COOKIES", "yes"),
    ],
)
def test_an_override_of_the_wrong_type_is_refused(
    node_file: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    name = variable.removeprefix("GATEWAY_").lower()
    with pytest.raises(ConfigError, match=f"key {name} has a bad value"):
        load_config(NodeConfig, node_file)
