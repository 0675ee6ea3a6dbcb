"""build_dataclass: params validated against a config dataclass, with messages that name the
component, the key, the value received and what was expected."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from rewardgym.core.config import build_dataclass
from rewardgym.core.errors import ConfigError, RegistrationError
from rewardgym.core.registry import ENVS

COMPONENT = "environment 'acme/widget-v0'"


class Color(enum.Enum):
    RED = 1
    BLUE = 2


@dataclass(frozen=True)
class Inner:
    size: int = 1
    label: str = "x"


@dataclass
class Widget:
    count: int = 1
    scale: float = 1.0
    name: str = "w"
    enabled: bool = False
    limit: int | None = None
    mode: Literal["fast", "slow"] = "fast"
    sizes: list[int] = field(default_factory=list)
    shape: tuple[int, ...] = (1, 2)
    pair: tuple[int, str] = (0, "a")
    weights: dict[str, float] = field(default_factory=dict)
    inner: Inner = field(default_factory=Inner)
    maybe_inner: Inner | None = None
    color: Color = Color.RED
    path: Path = Path(".")
    extra: Any = None
    tags: frozenset[str] = frozenset()


def build(**params: Any) -> Widget:
    return build_dataclass(Widget, params, component=COMPONENT)


def test_defaults_and_a_real_dataclass_instance():
    widget = build()
    assert type(widget) is Widget and widget == Widget()


def test_values_are_normalised_to_the_annotation():
    widget = build(
        scale=2,
        shape=[3, 4],
        pair=[1, "b"],
        inner={"size": 5},
        maybe_inner={"label": "y"},
        color="BLUE",
        path="runs/x",
        tags=["a", "b"],
        weights={"a": 1},
    )
    assert widget.scale == 2.0 and type(widget.scale) is float
    assert widget.shape == (3, 4) and widget.pair == (1, "b")
    assert widget.inner == Inner(size=5) and widget.maybe_inner == Inner(label="y")
    assert widget.color is Color.BLUE and widget.path == Path("runs/x")
    assert widget.tags == frozenset({"a", "b"}) and widget.weights == {"a": 1.0}


def test_unknown_param_suggests_the_closest_and_lists_the_valid_ones():
    with pytest.raises(
        ConfigError,
        match=re.escape(
            f"Unknown param 'cuont' for {COMPONENT}. Did you mean 'count'? Valid params: color, "
            "count, enabled, extra, inner, limit,"
        ),
    ):
        build(cuont=2)


def test_unknown_nested_param_names_its_path():
    with pytest.raises(
        ConfigError,
        match=re.escape(f"Unknown param 'inner.sizee' for {COMPONENT}. Did you mean 'size'?"),
    ):
        build(inner={"sizee": 2})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"count": "3"}, "param 'count' of {c}: got '3' (str), expected int."),
        ({"count": 2.5}, "param 'count' of {c}: got 2.5 (float), expected int."),
        ({"count": True}, "param 'count' of {c}: got True (bool), expected int."),
        ({"name": 3}, "param 'name' of {c}: got 3 (int), expected str."),
        ({"enabled": "yes"}, "param 'enabled' of {c}: got 'yes' (str), expected bool."),
        ({"enabled": 1}, "param 'enabled' of {c}: got 1 (int), expected bool."),
        ({"scale": "1e-4"}, "param 'scale' of {c}: got '1e-4' (str), expected float."),
        ({"limit": "x"}, "param 'limit' of {c}: got 'x' (str), expected int | None."),
        ({"sizes": [1, "2"]}, "param 'sizes[1]' of {c}: got '2' (str), expected int."),
        ({"sizes": "12"}, "param 'sizes' of {c}: got '12' (str), expected list[int]."),
        ({"weights": {"a": "x"}}, "param 'weights.a' of {c}: got 'x' (str), expected float."),
        ({"inner": 3}, "param 'inner' of {c}: got 3 (int), expected a mapping (Inner)."),
        ({"inner": {"size": "s"}}, "param 'inner.size' of {c}: got 's' (str), expected int."),
        ({"pair": [1]}, "param 'pair' of {c}: got [1] (list), expected tuple[int, str] (2 items)."),
    ],
)
def test_wrong_types_name_the_key_value_and_expected_type(params, message):
    with pytest.raises(
        ConfigError, match=re.escape("Wrong type for " + message.format(c=COMPONENT))
    ):
        build(**params)


def test_bad_choices_list_the_allowed_values():
    with pytest.raises(
        ConfigError,
        match=re.escape(
            f"Bad value for param 'mode' of {COMPONENT}: got 'medium' (str), "
            "expected one of 'fast', 'slow'."
        ),
    ):
        build(mode="medium")
    with pytest.raises(ConfigError, match=re.escape("expected one of 'RED', 'BLUE'.")):
        build(color="GREEN")


def test_params_must_be_a_mapping():
    with pytest.raises(
        ConfigError,
        match=re.escape(
            f"Wrong type for param 'params' of {COMPONENT}: got [1] (list), "
            "expected a mapping (Widget)."
        ),
    ):
        build_dataclass(Widget, [1], component=COMPONENT)  # type: ignore[arg-type]


@dataclass
class Required:
    must: int
    marked: str = "???"  # omegaconf's MISSING marker: mandatory too
    optional: int = 0


def test_missing_required_params_are_named():
    with pytest.raises(
        ConfigError,
        match=re.escape(
            f"Missing required param 'must' of {COMPONENT}, param 'marked' of {COMPONENT}."
        ),
    ):
        build_dataclass(Required, {}, component=COMPONENT)
    assert build_dataclass(Required, {"must": 1, "marked": "m"}, component=COMPONENT).must == 1


@dataclass
class Checked:
    level: int = 1

    def __post_init__(self) -> None:
        if self.level > 3:
            raise ValueError(f"level must be <= 3, got {self.level}")


def test_errors_of_the_class_itself_name_the_component():
    with pytest.raises(
        ConfigError, match=re.escape(f"Invalid params for {COMPONENT}: level must be <= 3, got 4")
    ):
        build_dataclass(Checked, {"level": 4}, component=COMPONENT)


@dataclass
class Unresolvable:
    thing: NoSuchType = None  # type: ignore[name-defined]  # noqa: F821


def test_unresolvable_annotations_are_a_registration_error():
    with pytest.raises(RegistrationError, match=re.escape("Unresolvable (config of environment")):
        build_dataclass(Unresolvable, {}, component=COMPONENT)


def test_the_registry_uses_it_for_env_params():
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "Unknown param 'difficulty_' for environment 'rewardgym/arithmetic-v0'. "
            "Did you mean 'difficulty'? Valid params: difficulty, feedback, max_turns"
        ),
    ):
        ENVS.make_config("rewardgym/arithmetic-v0", {"difficulty_": 2})
    assert ENVS.make_config("rewardgym/arithmetic-v0", {"difficulty": 3}).difficulty == 3
