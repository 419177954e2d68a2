"""The settings object read from the environment (docs/operations.md §3)."""

from __future__ import annotations

import pytest

from pipelines.config import Settings


def test_the_config_push_timeout_defaults_to_2_s_and_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HAIRTRIGGER_CONFIG_PUSH_TIMEOUT_S", raising=False)
    assert Settings.from_env().config_push_timeout_s == 2.0
    monkeypatch.setenv("HAIRTRIGGER_CONFIG_PUSH_TIMEOUT_S", "0.25")
    assert Settings.from_env().config_push_timeout_s == 0.25


@pytest.mark.parametrize("value", ["soon", "0", "-1", "nan", "inf", "601"])
def test_a_config_push_timeout_out_of_range_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("HAIRTRIGGER_CONFIG_PUSH_TIMEOUT_S", value)
    with pytest.raises(ValueError, match="HAIRTRIGGER_CONFIG_PUSH_TIMEOUT_S"):
        Settings.from_env()
