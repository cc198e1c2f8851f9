"""Checks a node runs before it serves, and `gateway node check` prints as a checklist.

Everything that would make the node's first real request fail is checked here: its
configuration's policy, its PKI bundle against itself and against the broker's signed
directory, its database and migrations, the action table its configuration maps, its
match index, and a police node's holiday calendar. `node serve` refuses to start on any
failure; an unreachable broker is only a warning there (requests arrive through the
broker, so none can fail meanwhile, and the node fetches the directory when the broker
is back), but fails `node check`.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError

from gateway.config import NodeConfig
from gateway.db import make_engine
from gateway.pki.directory import Directory
from gateway.pki.store import NodeBundle
from gateway.policy.bundle import listing_problem
from gateway.policy.engine import PolicyLoadError
from nodes.node_policy import load_node_policy
from nodes.preflight.alerts import check_alerts
from nodes.preflight.calendar import check_calendar
from nodes.preflight.checks import FAIL, WARN, Check, PreflightError, fail, ok
from nodes.preflight.key_storage import check_key_storage
from nodes.preflight.pki import check_bundle, check_member, fetch_directory
from nodes.preflight.tables import check_tables

__all__ = ["Check", "PreflightError", "preflight", "run_checks"]

log = logging.getLogger(__name__)


def check_policy(config: NodeConfig, directory: Directory | None) -> Check:
    """The signed bundle verifies, its policy loads and (with the directory) is listed."""
    try:
        engine = load_node_policy(config, bundle=NodeBundle(config.pki_bundle))
    except (PolicyLoadError, OSError, ValueError) as exc:
        return fail(
            "policy", f"{str(exc).splitlines()[0]}; copy policy-bundle.json from the administrator"
        )
    loaded = engine.policy_set_hash
    if directory is not None:
        problem = listing_problem(loaded, directory.policy_bundle)
        if problem:
            return fail("policy", problem)
    return ok("policy", f"{config.node_policy()} loads from signed bundle {loaded[:12]}")


def run_checks(config: NodeConfig, *, serve: bool = False) -> list[Check]:
    """Every check, in order; `serve` migrates the database first and tolerates no broker."""
    bundle, facts = check_bundle(config)
    directory_check, directory = (
        fetch_directory(config, serve=serve) if facts is not None else (None, None)
    )
    results = [bundle, check_key_storage(config)]
    if directory_check is not None:
        results.append(directory_check)
    results.append(check_member(config, directory, facts))
    results.append(check_policy(config, directory))
    calendar = check_calendar(config)
    if calendar is not None:
        results.append(calendar)
    alerts = check_alerts(config, directory)
    if alerts is not None:
        results.append(alerts)
    try:
        engine = make_engine(config.database)
    except (SQLAlchemyError, ValueError) as exc:
        results.append(fail("database", f"{config.database!r} is not a usable URL ({exc})"))
        return results
    try:
        results.extend(check_tables(engine, config, serve=serve))
    finally:
        engine.dispose()
    return results


def preflight(config: NodeConfig) -> list[Check]:
    """Run the checks before serving; raise `PreflightError` if the node must not start."""
    results = run_checks(config, serve=True)
    for result in results:
        level = logging.WARNING if result.status in (WARN, FAIL) else logging.INFO
        log.log(level, "preflight %s", result.line())
    failures = [r for r in results if r.status == FAIL]
    if failures:
        raise PreflightError(failures)
    return results
