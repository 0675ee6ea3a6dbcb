"""build_dataclass: bare container annotations take YAML lists, dates and times ISO strings."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field

import pytest

from rewardgym.core.config import to_dict
from rewardgym.core.errors import ConfigError
from rewardgym.core.params import build_dataclass


@dataclass
class Schedule:
    ops: tuple = ("+", "-")
    names: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    start: datetime.time = datetime.time(0, 0)
    day: datetime.date = datetime.date(2000, 1, 1)
    at: datetime.datetime | None = None


def test_bare_containers_take_lists_and_keep_their_type():
    config = build_dataclass(
        Schedule, {"ops": ["*"], "names": ("a",), "extra": {"k": 1}}, component="x"
    )
    assert (config.ops, config.names, config.extra) == (("*",), ["a"], {"k": 1})
    with pytest.raises(
        ConfigError,
        match=re.escape("Wrong type for param 'ops' of x: got '+' (str), expected tuple."),
    ):
        build_dataclass(Schedule, {"ops": "+"}, component="x")


def test_dates_and_times_take_iso_strings_and_round_trip():
    params = {"start": "13:45:00", "day": "2024-05-31", "at": "2024-05-31T13:45:00"}
    config = build_dataclass(Schedule, params, component="x")
    assert config.start == datetime.time(13, 45) and config.day == datetime.date(2024, 5, 31)
    assert config.at == datetime.datetime(2024, 5, 31, 13, 45)
    assert build_dataclass(Schedule, to_dict(config), component="x") == config
    assert to_dict(config)["day"] == "2024-05-31"
    for key, value, example in (
        ("start", "1pm", "'13:45:00'"),
        ("day", "31/05/2024", "'2024-05-31'"),
        ("at", "soon", "'2024-05-31T13:45:00'"),
    ):
        with pytest.raises(ConfigError, match=re.escape(f"such as {example}.")):
            build_dataclass(Schedule, {key: value}, component="x")
