"""Mixed precision: what the trainer computes in, and the checks that a device can run it.

``model.dtype`` is the dtype the parameters (and AdamW's state) are kept in;
``trainer.mixed_precision`` ("none", "bf16", "fp16") is the dtype the forward and backward passes
compute in, under ``torch.autocast`` (:class:`Precision`). "fp16" adds a dynamic loss scaler
(``torch.amp.GradScaler``): float16's range is small, so the loss is multiplied by a large
scale before the backward pass, the gradients are divided by it before clipping, and a step
whose gradients overflow is skipped (the scale then halves).

The combinations that make sense, checked by :func:`check_precision` before training starts:

===================  =======================  ==========================================
``model.dtype``      ``mixed_precision``      what happens
===================  =======================  ==========================================
float32              none                     everything in float32 (the default)
float32              bf16                     float32 weights, bfloat16 matmuls
float32              fp16                     float32 weights, float16 matmuls, loss scaler
bfloat16             none / bf16              bfloat16 weights (half the memory)
bfloat16             fp16                     refused: float16 compute from bfloat16 weights
float16              any, when training       refused: AdamW cannot update float16 weights
===================  =======================  ==========================================

A dtype the device cannot compute in (bfloat16 on a GPU older than Ampere, say) is refused too.
Which dtypes a device runs is a plain set (:func:`supported_dtypes`), so the checks are pure
functions that tests call with any capability.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rewardgym.core.errors import ConfigError

__all__ = [
    "AUTOCAST_DTYPES",
    "TORCH_DTYPES",
    "Precision",
    "check_precision",
    "dtype_name",
    "supported_dtypes",
]

# trainer.mixed_precision -> the dtype autocast computes in
AUTOCAST_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}
# model.dtype / a dtype name -> the torch dtype (also what the model loader converts to)
TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class Precision:
    """How one stage's trainer computes: under autocast to ``dtype`` on ``device_type`` (None:
    in the parameters' own dtype), with a loss scaler when ``dtype`` is float16."""

    device_type: str = "cpu"
    dtype: torch.dtype | None = None

    @classmethod
    def of(cls, mixed_precision: str, device: Any) -> Precision:
        """The precision of ``trainer.mixed_precision`` on ``device`` (a torch device or str)."""
        name = AUTOCAST_DTYPES.get(mixed_precision)
        return cls(torch.device(device).type, None if name is None else TORCH_DTYPES[name])

    @property
    def scaled(self) -> bool:
        """Whether the loss is scaled (fp16: its gradients would underflow otherwise)."""
        return self.dtype == torch.float16

    def autocast(self) -> contextlib.AbstractContextManager:
        """A context in which forward passes compute in ``dtype`` (a no-op without one)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler | None:
        """A fresh dynamic loss scaler for fp16, None otherwise."""
        return torch.amp.GradScaler(self.device_type) if self.scaled else None


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.bfloat16`` -> ``"bfloat16"``."""
    return str(dtype).removeprefix("torch.")


def supported_dtypes(device: str) -> frozenset[str]:
    """The dtypes ``device`` ("cpu", "cuda", "cuda:N") can compute in: float32 always; on CUDA
    float16, and bfloat16 when ``torch.cuda.is_bf16_supported()``; on a CPU each one that a
    tiny matmul (plain and under autocast) runs in without an error."""
    kind = torch.device(device).type
    if kind == "cuda":
        names = {"float32", "float16"}
        if torch.cuda.is_bf16_supported():
            names.add("bfloat16")
        return frozenset(names)
    names = {"float32"}
    for name in ("bfloat16", "float16"):
        dtype = TORCH_DTYPES[name]
        try:
            x = torch.ones(2, 2, dtype=dtype, device=device)
            (x @ x).sum().item()
            with torch.autocast(kind, dtype=dtype):
                torch.nn.functional.linear(torch.ones(2, 2, device=device), torch.eye(2)).sum()
        except (RuntimeError, TypeError, NotImplementedError):
            continue
        names.add(name)
    return frozenset(names)


def check_precision(
    model_dtype: str,
    mixed: Sequence[tuple[str, str]],
    *,
    device: str,
    supported: Collection[str],
    training: bool = True,
    dtype_key: str = "model.dtype",
) -> None:
    """A :class:`ConfigError` saying what to change unless the parameters' dtype
    ``model_dtype`` ("float32", "bfloat16", "float16"; "auto" is checked once the model has
    loaded) and each stage's ``(key, trainer.mixed_precision)`` in ``mixed`` can train on
    ``device``, whose dtypes are ``supported`` (see :func:`supported_dtypes`). Without
    ``training`` only the parameters' dtype is checked. ``dtype_key`` names the dtype's origin
    in messages."""
    if model_dtype != "auto":
        _check_device(dtype_key, model_dtype, model_dtype, device, supported, params=True)
    if not training:
        return
    if model_dtype == "float16":
        raise ConfigError(
            f"{dtype_key} is float16, which cannot be trained: AdamW's small updates vanish "
            "in float16 weights, and the fp16 loss scaler needs float32 weights to unscale "
            "into. Keep float32 parameters (model.dtype=float32) and set "
            "trainer.mixed_precision=fp16 to compute in float16, or use model.dtype=bfloat16 "
            "on a device that supports it."
        )
    for key, value in mixed:
        if value == "none":
            continue
        if value == "fp16" and model_dtype == "bfloat16":
            raise ConfigError(
                f"{key} is fp16 but {dtype_key} is bfloat16: computing in float16 from "
                "bfloat16 weights loses bfloat16's range and the loss scaler cannot unscale "
                f"into bfloat16 gradients. Set {key}=bf16 (or no) to keep bfloat16 weights, or "
                "model.dtype=float32 to use fp16."
            )
        _check_device(key, value, AUTOCAST_DTYPES[value], device, supported, params=False)


def _check_device(
    key: str, value: str, dtype: str, device: str, supported: Collection[str], *, params: bool
) -> None:
    """A ConfigError unless ``device`` computes in ``dtype`` (the parameters' dtype when
    ``params``, else an autocast dtype), the value of ``key``."""
    if dtype in supported:
        return
    why = (
        "torch.cuda.is_bf16_supported() is False on this GPU"
        if device.startswith("cuda") and dtype == "bfloat16"
        else f"a {dtype} matmul fails there"
    )
    fp16 = dtype == "bfloat16" and "float16" in supported
    if params:
        fix = "model.dtype=float32" + (
            " (with trainer.mixed_precision=fp16 to save memory)" if fp16 else ""
        )
    else:
        fix = f"{key}=fp16 (with model.dtype=float32) or {key}=none" if fp16 else f"{key}=none"
    raise ConfigError(
        f"{key} is {value!r}, but the device {device!r} cannot compute in {dtype} ({why}). "
        f"Set {fix}, or train on a device that supports {dtype}."
    )
