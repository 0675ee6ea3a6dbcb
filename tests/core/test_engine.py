"""The engine contract's weight-sync capabilities: what an engine that implements none of them
gets, and that the module stays free of torch."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from rewardgym.core.engine import WEIGHT_SYNCS, Engine


class _Minimal(Engine):
    """Only what every engine must implement."""

    name = "minimal"

    def generate(self, prompts, params, *, first_row=0):
        return []

    def update_weights(self, model):
        pass


class _Nameless(Engine):
    """A plugin engine that sets no ``name``."""

    def generate(self, prompts, params, *, first_row=0):
        return []

    def update_weights(self, model):
        pass


def test_an_engine_without_the_capabilities_syncs_by_state_dict_into_its_model():
    assert _Minimal.owns_weights is False
    assert _Minimal.remote_weight_sync(None) == "state_dict"
    assert _Minimal.remote_weight_sync(None, gpus=2) in WEIGHT_SYNCS


def test_the_missing_capabilities_say_what_to_implement():
    with pytest.raises(
        NotImplementedError,
        match=re.escape(
            "The 'minimal' engine cannot load weights by value: implement load_weights(weights) "
            "in it (engines with owns_weights = True need it), or give it the model with "
            "update_weights(model)."
        ),
    ):
        _Minimal().load_weights([("w", 1.0)])
    with pytest.raises(
        NotImplementedError,
        match=re.escape(
            "The 'minimal' engine has no collective weight sync: its "
            "remote_weight_sync(config) must return 'state_dict', or it must implement "
            "start_broadcast and weight_transfer."
        ),
    ):
        _Minimal.start_broadcast(lambda method, *args: None, object(), None, engines=2)
    with pytest.raises(
        NotImplementedError,
        match=re.escape(
            "The 'minimal' engine has no collective weight sync (asked for step "
            "'start_weight_update'): its remote_weight_sync(config) must return 'state_dict'"
        ),
    ):
        _Minimal().weight_transfer("start_weight_update")
    with pytest.raises(NotImplementedError, match=re.escape("The '_Nameless' engine cannot")):
        _Nameless().load_weights([])


def test_the_engine_contract_imports_no_torch():
    code = "import sys, rewardgym.core.engine; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
