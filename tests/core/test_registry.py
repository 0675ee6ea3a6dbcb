import re
from dataclasses import dataclass

import pytest

from rewardgym.core.errors import (
    ConfigError,
    DuplicateRegistrationError,
    RegistrationError,
    UnknownNameError,
)
from rewardgym.core.registry import ENVS, Registry


@dataclass
class WidgetConfig:
    size: int = 1
    name: str = "w"


class Widget:
    def __init__(self, config: WidgetConfig) -> None:
        self.config = config


@pytest.fixture
def registry():
    return Registry("widget", versioned=True)


def test_register_and_build_with_validated_params(registry):
    registry.register("acme/widget-v0", Widget, config=WidgetConfig, origin="test")
    w = registry.build("acme/widget-v0", {"size": 3})
    assert isinstance(w, Widget) and w.config == WidgetConfig(size=3)
    assert registry.get("acme/widget-v0").origin == "test"
    assert registry.ids() == ["acme/widget-v0"] and "acme/widget-v0" in registry


def test_lazy_string_entry_points_import_on_build(registry):
    registry.register(
        "acme/widget-v1",
        "tests.core.test_registry:Widget",
        config="tests.core.test_registry:WidgetConfig",
    )
    assert isinstance(registry.build("acme/widget-v1"), Widget)


def test_unknown_id_suggests_the_closest(registry):
    registry.register("acme/widget-v0", Widget, config=WidgetConfig)
    with pytest.raises(
        UnknownNameError,
        match=re.escape(
            "No widget named 'acme/widgte-v0' is registered. Did you mean 'acme/widget-v0'?"
        ),
    ):
        registry.get("acme/widgte-v0")
    with pytest.raises(KeyError):  # natural second base
        registry.get("zzz/nothing-v0")


def test_unknown_version_lists_registered_versions(registry):
    registry.register("acme/widget-v0", Widget)
    registry.register("acme/widget-v1", Widget)
    with pytest.raises(UnknownNameError, match="acme/widget-v0, acme/widget-v1|Did you mean"):
        registry.get("acme/widget-v7")


def test_duplicate_names_both_origins(registry):
    registry.register("acme/widget-v0", Widget, origin="plugin 'a' (distribution a 1.0)")
    with pytest.raises(
        DuplicateRegistrationError,
        match=re.escape(
            "The widget id 'acme/widget-v0' is registered twice: first by plugin 'a' "
            "(distribution a 1.0), then by plugin 'b' (distribution b 2.0)."
        ),
    ):
        registry.register("acme/widget-v0", Widget, origin="plugin 'b' (distribution b 2.0)")


@pytest.mark.parametrize("bad", ["widget-v0", "acme/widget", "Acme/widget-v0", "acme/-v0", ""])
def test_malformed_versioned_ids(registry, bad):
    with pytest.raises(RegistrationError, match="expected 'namespace/name-vN'"):
        registry.register(bad, Widget)


def test_plain_names_and_bad_entry_points():
    names = Registry("algorithm", versioned=False)
    names.register("dr_grpo", Widget)
    with pytest.raises(RegistrationError, match="Malformed algorithm name 'Dr-GRPO'"):
        names.register("Dr-GRPO", Widget)
    with pytest.raises(RegistrationError, match="'package.module:attr' string"):
        names.register("grpo", "not a path")
    with pytest.raises(RegistrationError, match="must be a 'module:attr' string or a callable"):
        names.register("grpo", 42)


def test_unloadable_entry_point_names_the_entry(registry):
    registry.register("acme/widget-v0", "no_such_module_xyz:Thing", origin="plugin 'p'")
    with pytest.raises(
        RegistrationError,
        match=r"Could not load the entry point 'no_such_module_xyz:Thing' of widget 'acme/widget-v0' \(registered by plugin 'p'\)",
    ):
        registry.build("acme/widget-v0")


def test_params_for_entry_without_config_are_rejected(registry):
    registry.register("acme/widget-v0", lambda: "made")
    assert registry.build("acme/widget-v0") == "made"
    with pytest.raises(
        ConfigError, match=re.escape("widget 'acme/widget-v0' takes no params, got ['size']")
    ):
        registry.build("acme/widget-v0", {"size": 2})


def test_remove_origin_and_listeners(registry):
    seen = []
    registry.register("acme/a-v0", Widget, origin="x")
    registry.add_listener(lambda spec: seen.append(spec.id))
    registry.register("acme/b-v0", Widget, origin="x")
    registry.register("acme/c-v0", Widget, origin="y")
    assert seen == ["acme/a-v0", "acme/b-v0", "acme/c-v0"]
    assert [s.id for s in registry.remove_origin("x")] == ["acme/a-v0", "acme/b-v0"]
    assert registry.ids() == ["acme/c-v0"]
    with pytest.raises(UnknownNameError):
        registry.unregister("acme/a-v0")


def test_global_env_registry_has_builtins():
    assert "rewardgym/arithmetic-v0" in ENVS
    assert ENVS.get("rewardgym/arithmetic-v0").origin == "rewardgym (built-in)"
