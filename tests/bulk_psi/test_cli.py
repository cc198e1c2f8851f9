"""`gateway psi` and `gateway psi-offers` against the package's running consortium."""

from __future__ import annotations

from typer.testing import CliRunner

from gateway.cli import app
from tests.bulk_psi.conftest import CASE, Network

runner = CliRunner()


def psi(network: Network, *extra: str) -> list[str]:
    config = str(network.consortium.config_path("bank-a"))
    return [
        "psi",
        "--config",
        config,
        "--with",
        "carrier-1",
        "--kind",
        "phone",
        "--where",
        "flag=mule",
        "--case",
        CASE["case_ref"],
        "--basis",
        CASE["legal_basis"],
        *extra,
    ]


def test_psi_prints_the_intersection_as_a_table(network: Network) -> None:
    result = runner.invoke(app, psi(network, "--chunk-size", "100"), terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "90 in common: 250 here, 220 at carrier-1" in result.output
    shared = {i.value for i in network.planted.bank_mule} & {
        i.value for i in network.planted.carrier_flagged
    }
    assert all(value in result.output for value in shared)


def test_psi_cardinality_only_prints_just_the_size(network: Network) -> None:
    result = runner.invoke(app, psi(network, "--cardinality-only"), terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "90 in common" in result.output
    assert not any(i.value in result.output for i in network.planted.bank_mule)


def test_psi_errors_are_clear_and_name_no_identifier(network: Network) -> None:
    result = runner.invoke(app, psi(network, "--their-set", "small"), terminal_width=200)
    assert result.exit_code == 1
    assert "bulk PSI failed: carrier-1 refused exchange 0: the querier's set of 250" in (
        result.output
    )
    bad_where = runner.invoke(app, psi(network, "--where", "flag"))
    assert bad_where.exit_code == 1 and "--where takes attribute=value" in bad_where.output


def test_offers_can_be_added_listed_and_removed(network: Network) -> None:
    config = str(network.consortium.config_path("carrier-1"))
    added = runner.invoke(
        app,
        [
            *("psi-offers", "add", "--config", config, "--kind", "phone", "--name", "extra"),
            *("--where", "flag=ok", "--role", "police", "--cardinality-only"),
        ],
    )
    assert added.exit_code == 0, added.output
    listed = runner.invoke(app, ["psi-offers", "list", "--config", config], terminal_width=200)
    assert "extra" in listed.output and "flag=ok" in listed.output
    removed = runner.invoke(app, ["psi-offers", "remove", "extra", "--config", config])
    assert removed.exit_code == 0
    again = runner.invoke(app, ["psi-offers", "remove", "extra", "--config", config])
    assert again.exit_code == 1 and "no offer named 'extra'" in again.output
