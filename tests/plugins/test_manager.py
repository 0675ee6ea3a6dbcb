"""Unit tests of PluginManager.register / unregister with in-process plugin objects.

Each plugin is registered inside a fixture and unregistered after, so the process-wide
registries are left as they were.
"""

from __future__ import annotations

import re

import gymnasium
import pytest

from rewardgym import ENVS, VERIFIERS, hookimpl
from rewardgym.core.errors import DuplicateRegistrationError, PluginError, RegistrationError
from rewardgym.core.registry import REGISTRIES
from rewardgym.plugins.manager import get_plugin_manager

BUILTIN_ID = "rewardgym/arithmetic-v0"
ENTRY = "rewardgym.envs.arithmetic:ArithmeticEnv"
CONFIG = "rewardgym.envs.arithmetic:ArithmeticConfig"


def _origin(name: str) -> str:
    return f"plugin '{name}' (registered directly)"


def _snapshot() -> dict[str, list[tuple[str, str]]]:
    return {key: [(s.id, s.origin) for s in reg.specs()] for key, reg in REGISTRIES.items()}


@pytest.fixture
def manager():
    """The process-wide manager; any plugin a test leaves registered is removed after it."""
    pm = get_plugin_manager()
    pm.load()
    before_plugins, before_specs = dict(pm.plugins), _snapshot()
    yield pm
    for name in [n for n in pm.plugins if n not in before_plugins]:
        pm.unregister(name)
    assert _snapshot() == before_specs, "a test left registrations behind"


class AcmePlugin:
    """A well-behaved plugin: one env and one verifier (reusing the arithmetic classes)."""

    @hookimpl
    def rewardgym_register_envs(self, register):
        register("acme/sum-v0", ENTRY, config=CONFIG, description="acme sums")

    @hookimpl
    def rewardgym_register_verifiers(self, register):
        register("acme/sum-v0", "rewardgym.envs.arithmetic:ArithmeticVerifier")


def test_register_adds_entries_with_the_plugins_origin_and_unregister_removes_them(manager):
    info = manager.register(AcmePlugin(), name="acme")
    assert info.origin == _origin("acme") and manager.plugins["acme"] is info
    assert ENVS.get("acme/sum-v0").origin == _origin("acme")
    assert ENVS.get("acme/sum-v0").description == "acme sums"
    assert VERIFIERS.get("acme/sum-v0").origin == _origin("acme")
    assert "acme/sum-v0" in gymnasium.envs.registry  # mirrored for gymnasium.make

    manager.unregister("acme")
    assert "acme/sum-v0" not in ENVS and "acme/sum-v0" not in VERIFIERS
    assert "acme" not in manager.plugins and not manager._pm.has_plugin("acme")
    assert "acme/sum-v0" not in gymnasium.envs.registry


def test_registered_env_can_be_made_and_registration_is_repeatable(manager):
    import rewardgym

    manager.register(AcmePlugin(), name="acme")
    env = rewardgym.make("acme/sum-v0", difficulty=2)
    assert env.config.difficulty == 2
    manager.unregister("acme")
    manager.register(AcmePlugin(), name="acme")  # the same ids, again, after unregistering
    assert "acme/sum-v0" in ENVS


def test_unregister_unknown_plugin_is_an_error(manager):
    with pytest.raises(PluginError, match=re.escape("No plugin named 'nobody' is registered.")):
        manager.unregister("nobody")


def test_a_plugin_name_can_be_used_once(manager):
    manager.register(AcmePlugin(), name="acme")
    with pytest.raises(
        PluginError, match=re.escape("A plugin named 'acme' is already registered.")
    ):
        manager.register(AcmePlugin(), name="acme")
    assert ENVS.get("acme/sum-v0").origin == _origin("acme")


def test_duplicate_of_a_builtin_id_names_both_origins_and_is_rolled_back(manager):
    class Clash:
        @hookimpl
        def rewardgym_register_verifiers(self, register):
            register("clash/own-v0", "rewardgym.envs.arithmetic:ArithmeticVerifier")

        @hookimpl
        def rewardgym_register_envs(self, register):
            register(BUILTIN_ID, ENTRY, config=CONFIG)

    message = (
        f"The environment id '{BUILTIN_ID}' is registered twice: first by rewardgym (built-in), "
        f"then by {_origin('clash')}."
    )
    with pytest.raises(DuplicateRegistrationError, match=re.escape(message)):
        manager.register(Clash(), name="clash")
    assert "clash" not in manager.plugins and not manager._pm.has_plugin("clash")
    assert ENVS.get(BUILTIN_ID).origin == "rewardgym (built-in)"
    assert "clash/own-v0" not in VERIFIERS


def test_duplicate_between_two_direct_plugins_names_both(manager):
    class Other:
        @hookimpl
        def rewardgym_register_envs(self, register):
            register("acme/sum-v0", ENTRY)

    manager.register(AcmePlugin(), name="acme")
    message = f"first by {_origin('acme')}, then by {_origin('other')}."
    with pytest.raises(DuplicateRegistrationError, match=re.escape(message)):
        manager.register(Other(), name="other")
    assert ENVS.get("acme/sum-v0").origin == _origin("acme")  # the first one is untouched


def test_duplicate_within_one_plugin_is_rolled_back(manager):
    class Twice:
        @hookimpl
        def rewardgym_register_envs(self, register):
            register("twice/env-v0", ENTRY)
            register("twice/env-v0", ENTRY)

    with pytest.raises(DuplicateRegistrationError, match=re.escape("'twice/env-v0'")):
        manager.register(Twice(), name="twice")
    assert "twice/env-v0" not in ENVS and "twice" not in manager.plugins


def test_hook_implementations_may_take_a_subset_of_the_arguments(manager):
    calls = []

    class NoArgs:
        @hookimpl
        def rewardgym_register_envs(self):
            calls.append("envs")

    manager.register(NoArgs(), name="noargs")
    assert calls == ["envs"]
    manager.unregister("noargs")
    assert calls == ["envs"]  # hooks run once, at registration


def test_hook_implementations_may_be_plain_functions_in_a_module_like_object(manager):
    import types

    module = types.ModuleType("acme_module_plugin")

    @hookimpl
    def rewardgym_register_envs(register):
        register("acme/module-v0", ENTRY, config=CONFIG)

    module.rewardgym_register_envs = rewardgym_register_envs
    manager.register(module, name="acme-module")
    assert ENVS.get("acme/module-v0").origin == _origin("acme-module")


def test_malformed_id_raises_and_rolls_back_the_plugins_other_entries(manager):
    class Malformed:
        @hookimpl
        def rewardgym_register_envs(self, register):
            register("bad/first-v0", ENTRY)
            register("Not An Id", ENTRY)

        @hookimpl
        def rewardgym_register_verifiers(self, register):
            register("bad/verifier-v0", "rewardgym.envs.arithmetic:ArithmeticVerifier")

    message = "Malformed environment id 'Not An Id': expected 'namespace/name-vN'"
    with pytest.raises(RegistrationError, match=re.escape(message)):
        manager.register(Malformed(), name="malformed")
    assert "bad/first-v0" not in ENVS
    assert "bad/verifier-v0" not in VERIFIERS
    assert "bad/first-v0" not in gymnasium.envs.registry
    assert "malformed" not in manager.plugins and not manager._pm.has_plugin("malformed")


def test_malformed_id_in_a_later_hook_rolls_back_an_earlier_hook(manager):
    class LateFailure:
        @hookimpl
        def rewardgym_register_envs(self, register):
            register("late/env-v0", ENTRY)

        @hookimpl
        def rewardgym_register_verifiers(self, register):
            register("late/verifier", "rewardgym.envs.arithmetic:ArithmeticVerifier")

    with pytest.raises(RegistrationError, match=re.escape("Malformed verifier id 'late/verifier'")):
        manager.register(LateFailure(), name="late")
    assert "late/env-v0" not in ENVS


def test_malformed_entry_point_raises_and_rolls_back(manager):
    class BadEntry:
        @hookimpl
        def rewardgym_register_envs(self, register):
            register("badentry/ok-v0", ENTRY)
            register("badentry/env-v0", "no colon here")

    with pytest.raises(RegistrationError, match=re.escape("got 'no colon here'")):
        manager.register(BadEntry(), name="badentry")
    assert "badentry/ok-v0" not in ENVS


def test_misspelt_hook_is_an_error_naming_the_known_hooks(manager):
    class Misspelt:
        @hookimpl
        def rewardgym_register_env(self, register):  # missing the final "s"
            register("misspelt/env-v0", ENTRY)

    with pytest.raises(PluginError) as caught:
        manager.register(Misspelt(), name="misspelt")
    text = str(caught.value)
    assert "rewardgym_register_env" in text and _origin("misspelt") in text
    assert "Known hooks: rewardgym_register_envs, rewardgym_register_verifiers" in text
    assert not manager._pm.has_plugin("misspelt") and "misspelt/env-v0" not in ENVS

    class Fixed:
        @hookimpl
        def rewardgym_register_envs(self, register):
            register("misspelt/env-v0", ENTRY)

    manager.register(Fixed(), name="misspelt")  # the name is free again
    assert "misspelt/env-v0" in ENVS


def test_hook_with_an_unknown_argument_is_an_error(manager):
    class WrongArgs:
        @hookimpl
        def rewardgym_register_envs(self, register, registry):
            pass

    with pytest.raises(PluginError, match=re.escape("does not match rewardgym's hook specs")):
        manager.register(WrongArgs(), name="wrongargs")
    assert not manager._pm.has_plugin("wrongargs")


def test_hook_that_raises_propagates_and_is_rolled_back(manager):
    class Raises:
        @hookimpl
        def rewardgym_register_envs(self, register):
            register("raises/env-v0", ENTRY)
            raise RuntimeError("registration failed on purpose")

    with pytest.raises(RuntimeError, match=re.escape("registration failed on purpose")):
        manager.register(Raises(), name="raises")
    assert "raises/env-v0" not in ENVS and "raises" not in manager.plugins
