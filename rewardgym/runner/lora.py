"""LoRA through ``peft`` (``model.lora``): wrapping the policy, its reference, and its weights.

- :func:`apply_lora` wraps a loaded model with ``peft.get_peft_model``; only the adapter's
  weights require grad, so the optimizer gets only those. The adapter is initialised from the
  run's seed, not from the global RNG. ``target_modules`` that match no module are a
  :class:`~rewardgym.core.errors.ConfigError` listing the model's linear layers.
- :class:`AdapterDisabled` is the reference model for a KL term: the very same model, called
  with the adapter disabled (``with model.disable_adapter():``), so the reference is the base
  model and no second copy is kept.
- :func:`merged_state_dict` is the policy's weights as a plain model of the base architecture
  has them: each adapted weight is ``W + (alpha / r) B A`` (peft's ``get_delta_weight``,
  computed into a new tensor: ``W`` itself is never touched, so the base stays bit-identical),
  and the names are the base model's (no ``base_model.model.`` prefix, no ``base_layer.``
  infix, no adapter weights). Engines that hold their own copy of the weights (vLLM, Ray
  actors) load this; :func:`save_merged` writes it as a model directory that
  ``AutoModelForCausalLM.from_pretrained`` reads.
- :func:`adapter_state_dict` / :func:`load_adapter_state_dict`: the adapter's weights alone,
  what a checkpoint needs to resume (the base is loaded again from ``model.name_or_path``).

Every function also takes a plain (not peft) model, for which it is the obvious no-op.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from rewardgym.core.config.schema import LoraSection
from rewardgym.core.errors import ConfigError, RewardGymError, first_line, require
from rewardgym.runner.batch import rng_devices

__all__ = [
    "AdapterDisabled",
    "adapter_state_dict",
    "apply_lora",
    "base_name",
    "is_peft",
    "load_adapter_state_dict",
    "merged_state_dict",
    "save_adapter",
    "save_merged",
]

PEFT_PREFIX = "base_model.model."  # PeftModel -> LoraModel -> the transformers model
ADAPTER_MARKERS = ("lora_",)  # lora_A, lora_B, lora_embedding_A/B, lora_magnitude_vector


def require_peft() -> Any:
    """The ``peft`` module, or a MissingExtraError naming the pip command."""
    return require("peft", "training", "LoRA adapters (model.lora)")


def is_peft(model: Any) -> bool:
    """Whether ``model`` is a peft model (without importing peft when it is not loaded)."""
    return hasattr(model, "peft_config") and hasattr(model, "get_base_model")


def apply_lora(model: Any, section: LoraSection, *, seed: int = 0) -> Any:
    """``model`` wrapped with LoRA adapters as ``model.lora`` says; only they require grad.
    The adapters' initial weights depend only on ``seed`` (the global RNG is left as it was)."""
    peft = require_peft()
    targets = section.target_modules
    if isinstance(targets, str) and targets != "all-linear":
        targets = (targets,)  # one name, not a regular expression (peft's reading of a str)
    if not isinstance(targets, str):
        _check_targets(model, targets)
        targets = list(targets)
    config = peft.LoraConfig(
        r=section.r,
        lora_alpha=section.alpha,
        lora_dropout=section.dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )
    try:
        with torch.random.fork_rng(devices=rng_devices(model)):
            torch.manual_seed(seed)
            return peft.get_peft_model(model, config)
    except ValueError as exc:  # peft refuses a module it cannot adapt
        reason = first_line(exc)
        raise ConfigError(
            f"model.lora.target_modules={section.target_modules!r} cannot be adapted: {reason} "
            f"Name linear layers instead (this model has: {_linear_names(model)}), or use "
            "'all-linear'."
        ) from exc


def _check_targets(model: Any, targets: tuple[str, ...]) -> None:
    """Each target must be the name, or the last dotted part(s) of the name, of a module."""
    names = [name for name, _ in model.named_modules() if name]
    missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if missing:
        raise ConfigError(
            f"model.lora.target_modules names {missing}, which match no module of the model "
            f"({type(model).__name__}). Its linear layers are: {_linear_names(model)}. Set "
            "model.lora.target_modules to some of these, or to 'all-linear'."
        )


def _linear_names(model: Any, limit: int = 12) -> str:
    """The distinct last name parts of ``model``'s linear layers, in order."""
    names = dict.fromkeys(
        name.rpartition(".")[2]
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear)
    )
    shown = list(names)[:limit]
    return ", ".join(shown) + (", ..." if len(names) > limit else "") if shown else "none"


class AdapterDisabled:
    """The base model under a peft model, as the reference for a KL term: calling it calls
    the peft model with its adapter disabled. It holds no weights of its own (no second copy)
    and has no ``state_dict``: the base is loaded again from ``model.name_or_path``."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def parameters(self) -> Any:
        return self.model.parameters()

    @property
    def config(self) -> Any:
        """The transformers config of the model (what log-prob passes read from it)."""
        return self.model.config

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.model.disable_adapter():
            return self.model(*args, **kwargs)


def base_name(name: str) -> str:
    """A peft model's parameter name as the base model has it:
    ``base_model.model.model.layers.0.q_proj.base_layer.weight`` ->
    ``model.layers.0.q_proj.weight``."""
    return name.removeprefix(PEFT_PREFIX).replace(".base_layer.", ".")


def _adapter_key(name: str) -> bool:
    return any(marker in name for marker in ADAPTER_MARKERS)


def merged_state_dict(model: Any) -> dict[str, torch.Tensor]:
    """``model``'s weights with each adapter merged in (``W + delta``, in ``W``'s dtype),
    under the base model's names; a plain model's own ``state_dict``. The tensors are
    detached; ``W`` itself is left as it was."""
    if not is_peft(model):
        return {k: v.detach() for k, v in model.state_dict().items()}
    from peft.tuners.lora import LoraLayer

    base = model.get_base_model()
    state = {base_name(k): v.detach() for k, v in base.state_dict().items() if not _adapter_key(k)}
    with torch.no_grad():
        for name, module in base.named_modules():
            if not isinstance(module, LoraLayer) or module.merged:
                continue
            weight = module.get_base_layer().weight  # the base layer's W
            merged = weight.detach().float()
            for adapter in module.active_adapters:
                if adapter in module.lora_A or adapter in module.lora_embedding_A:
                    merged = merged + module.get_delta_weight(adapter).float()
            key = base_name(f"{name}.base_layer.weight")
            for other, tensor in state.items():  # tied weights (lm_head = embed_tokens) too
                if other == key or tensor is weight or _same_storage(tensor, weight):
                    state[other] = merged.to(weight.dtype)
    return state


def _same_storage(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and a.data_ptr() == b.data_ptr()


def adapter_state_dict(model: Any) -> dict[str, torch.Tensor]:
    """The adapter's weights of a peft model (its full ``state_dict`` keys), detached."""
    return {k: v.detach() for k, v in model.state_dict().items() if _adapter_key(k)}


def load_adapter_state_dict(model: Any, state: dict[str, torch.Tensor]) -> None:
    """Load :func:`adapter_state_dict` ``state`` into the peft ``model``; every adapter weight
    must be there (the base weights are the model's own)."""
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if _adapter_key(k)]
    if missing or result.unexpected_keys:
        raise RewardGymError(
            f"The checkpoint's adapter does not fit the model: missing {missing[:3]}, "
            f"unexpected {list(result.unexpected_keys)[:3]}. Resume with the model.lora "
            "section the run was started with."
        )


def save_merged(model: Any, tokenizer: Any, path: str | os.PathLike) -> None:
    """Write ``model`` with its adapter merged as a plain model directory (the base
    architecture's config and :func:`merged_state_dict`), and the tokenizer."""
    Path(path).mkdir(parents=True, exist_ok=True)
    if is_peft(model):
        model.get_base_model().save_pretrained(path, state_dict=merged_state_dict(model))
    else:
        model.save_pretrained(path)
    tokenizer.save_pretrained(path)


def save_adapter(model: Any, path: str | os.PathLike) -> None:
    """Write the adapter alone (``peft.PeftModel.from_pretrained(base, path)`` reloads it)."""
    model.save_pretrained(path)
