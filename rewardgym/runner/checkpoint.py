"""Atomic checkpoints and exact resume.

A checkpoint is a folder ``<output_dir>/checkpoints/<stage>-step<NNNNNN>/`` holding
``state.pt`` (model, optimizer, LR scheduler and reference-model state, the fp16 loss scaler's
state, torch RNG state; with LoRA the model state is the adapter's weights alone and there is
no reference-model state: the base loads again from ``model.name_or_path``) and
``trainer_state.json`` (stage index and name, steps done, the length of ``metrics.jsonl`` when
it was written, results of finished stages). It is written into a temporary folder and renamed
into place, then ``checkpoints/latest`` (a one-line file naming it) is replaced atomically, so
a run killed at any moment leaves the previous checkpoint intact. The two newest are kept.

Sampling is seeded from (run seed, stage, step), never from RNG state carried between steps, so
a resumed run samples the same tasks and tokens as one that was never stopped; so is torch's RNG
during a step (dropout), by the trainer.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from rewardgym.core.errors import RewardGymError

__all__ = ["CheckpointState", "latest_checkpoint", "load_checkpoint", "save_checkpoint"]

KEEP = 2


@dataclass
class CheckpointState:
    """What the trainer needs besides tensors to continue a run."""

    stage_index: int
    stage_name: str
    step: int  # steps done in this stage
    metrics_lines: int  # lines in metrics.jsonl when the checkpoint was written
    stage_done: bool = False
    finished_stages: list[dict[str, Any]] = field(default_factory=list)


def _folder(output_dir: Path) -> Path:
    return output_dir / "checkpoints"


def save_checkpoint(output_dir: Path, state: CheckpointState, tensors: dict[str, Any]) -> Path:
    """Write a checkpoint atomically and point ``checkpoints/latest`` at it."""
    folder = _folder(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{state.stage_index:02d}-{state.stage_name}-step{state.step:06d}"
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder))
    try:
        torch.save({**tensors, "torch_rng": torch.get_rng_state()}, tmp / "state.pt")
        (tmp / "trainer_state.json").write_text(json.dumps(asdict(state), indent=2) + "\n")
        final = folder / name
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    pointer = folder / ".latest.tmp"
    pointer.write_text(name + "\n")
    os.replace(pointer, folder / "latest")
    _prune(folder, keep=name)
    return final


def _prune(folder: Path, keep: str) -> None:
    names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    for name in [n for n in names if n != keep][: max(0, len(names) - KEEP)]:
        shutil.rmtree(folder / name, ignore_errors=True)


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete checkpoint of the run in ``output_dir``, or None."""
    pointer = _folder(output_dir) / "latest"
    if not pointer.is_file():
        return None
    path = _folder(output_dir) / pointer.read_text().strip()
    if not (path / "state.pt").is_file() or not (path / "trainer_state.json").is_file():
        raise RewardGymError(
            f"The checkpoint {path} named by {pointer} is incomplete or missing; delete "
            f"{pointer} to resume from an older checkpoint, or start the run again."
        )
    return path


def load_checkpoint(path: Path) -> tuple[CheckpointState, dict[str, Any]]:
    """The trainer state and the tensors of the checkpoint at ``path``."""
    state = CheckpointState(**json.loads((path / "trainer_state.json").read_text()))
    tensors = torch.load(path / "state.pt", map_location="cpu", weights_only=False)
    torch.set_rng_state(tensors.pop("torch_rng"))
    return state, tensors
