"""docker-compose.yml keeps custody apart: each service its own bundle (read-only, as its
own user), its own database role with a password from its own secret, and PostgreSQL and
the collector on an internal network. deploy/postgres-init.sh is run against a real
PostgreSQL to show one agency's role cannot open another agency's database."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from tests.postgres import postgres_base_url

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
INIT = (ROOT / "deploy" / "compose-init.sh").read_text()
BUNDLE = "/run/gateway/bundle"


def gateway_services() -> dict[str, dict[str, Any]]:
    return {n: s for n, s in SERVICES.items() if s.get("command", [None])[1:2] == ["serve"]}


def identity(name: str) -> str:
    """The member a service runs as: broker-2 is a second process of the broker."""
    return "broker" if name.startswith("broker") else name


def test_only_init_mounts_the_administrators_pki_folder() -> None:
    holders = [
        name
        for name, service in SERVICES.items()
        for volume in service.get("volumes", [])
        if volume.split(":")[0] == "pki-admin"
    ]
    assert holders == ["init"]


def test_each_service_mounts_only_its_own_bundle_read_only_as_its_own_user() -> None:
    services = gateway_services()
    assert len(services) == 7
    users: dict[str, str] = {}
    for name, service in services.items():
        assert service["volumes"] == [f"bundle-{identity(name)}:{BUNDLE}:ro"], name
        user = str(service["user"])
        assert not user.startswith(("0", "root")), name
        assert users.setdefault(identity(name), user) == user, name
        assert any(BUNDLE in part for part in service["command"]), name
    assert len(set(users.values())) == len(users), "two members share an OS user"
    members = dict(re.findall(r"([a-z]+-[a-z0-9]+):[a-z]+:\d+:(\d+)", INIT))
    members["broker"] = re.search(r"BROKER_UID=(\d+)", INIT).group(1)  # type: ignore[union-attr]
    assert {m: f"{uid}:{uid}" for m, uid in members.items()} == users


def test_database_passwords_come_from_each_services_own_secret() -> None:
    assert "POSTGRES_PASSWORD" not in SERVICES["postgres"]["environment"]
    assert SERVICES["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"].startswith("/run/secrets/")
    for name, service in gateway_services().items():
        database = identity(name).replace("-", "_")
        assert service["secrets"] == [{"source": f"db-{identity(name)}", "target": "db-password"}]
        urls = [part for part in service["command"] if part.startswith("postgresql")]
        if not urls:  # a node: its URL is in the TOML that init writes
            assert '--database "postgresql+psycopg://$db@postgres/$db"' in INIT
            continue
        url = make_url(urls[0])
        assert (url.username, url.password, url.database) == (database, None, database), name
    assert "gateway" not in (ROOT / "deploy" / "postgres-init.sh").read_text().lower()


def test_postgres_and_the_collector_publish_no_port_and_sit_on_an_internal_network() -> None:
    assert COMPOSE["networks"]["internal"] == {"internal": True}
    for name in ("postgres", "otel-collector"):
        assert "ports" not in SERVICES[name], name
        assert SERVICES[name]["networks"] == ["internal"], name


def test_postgres_init_gives_each_agency_a_role_that_opens_only_its_database(
    tmp_path: Path,
) -> None:
    base = postgres_base_url()
    if not shutil.which("psql"):
        pytest.skip("psql is not installed")
    url = make_url(base)
    tag = f"c{uuid.uuid4().hex[:8]}"
    databases = [f"{tag}_bank_a", f"{tag}_police_1"]
    for db in databases:
        (tmp_path / f"db-{db.replace('_', '-')}").write_text(f"pw-{db}-'quoted\"\n")
    env = {
        **os.environ,
        "SECRETS": str(tmp_path),
        "DATABASES": " ".join(databases),
        "POSTGRES_USER": url.username or "postgres",
        "PGHOST": url.host or "127.0.0.1",
        "PGPORT": str(url.port or 5432),
    }
    try:
        done = subprocess.run(
            ["sh", str(ROOT / "deploy" / "postgres-init.sh")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        bank, police = databases
        as_bank = url.set(username=bank, password=None)
        engine = create_engine(as_bank.set(database=bank))
        with engine.connect() as own:
            assert own.execute(text("SELECT current_user")).scalar() == bank
            own.execute(text("CREATE TABLE accounts (handle text)"))  # owns its schema
            row = own.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = :r"), {"r": bank})
            assert row.scalar() is False
        engine.dispose()
        other = create_engine(as_bank.set(database=police))
        with pytest.raises(OperationalError, match="permission denied for database"):
            other.connect()
        other.dispose()
    finally:
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for db in databases:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
                conn.execute(text(f'DROP ROLE IF EXISTS "{db}"'))
        admin.dispose()
