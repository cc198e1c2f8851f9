"""Filter-mode keys of a node configuration: a deployer's mistake is refused at load."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, NodeConfig, load_config
from tests.config.test_env_overrides import NODE_TOML


def load(tmp_path: Path, extra: str) -> NodeConfig:
    path = tmp_path / "bank-a.toml"
    path.write_text(NODE_TOML + extra)
    return load_config(NodeConfig, path)


def test_the_defaults_load(tmp_path: Path) -> None:
    config = load(tmp_path, "")
    assert (config.filter_max_batch, config.filter_eval_per_hour) == (4096, 8192)
    assert (config.filter_eval_per_day, config.filter_sync_s) == (32768, 300.0)


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ("filter_max_batch = 1000\n", "filter_max_batch must be a power of two from 64 to 8192"),
        ("filter_max_batch = 16384\n", "filter_max_batch must be a power of two from 64 to 8192"),
        ("filter_max_batch = 32\n", "filter_max_batch must be a power of two from 64 to 8192"),
        ("filter_eval_per_hour = 0\n", "need 1 <= per hour <= per day"),
        ("filter_eval_per_hour = 100\nfilter_eval_per_day = 99\n", "need 1 <= per hour <= per day"),
    ],
)
def test_a_bad_filter_setting_is_refused_at_load(tmp_path: Path, extra: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        load(tmp_path, extra)
