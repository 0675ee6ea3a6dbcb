"""Where a run's numbers go: ``metrics.jsonl``, an optional TensorBoard log, a progress bar.

``metrics.jsonl`` has one JSON object per logged step: ``stage``, ``step`` (within the stage),
``global_step`` and the metrics (floats). Keys under ``time/`` are wall-clock timings; every
other key is a deterministic function of the config, so a resumed run writes the same lines as
one that was never stopped. On resume the file is cut back to its length at the checkpoint.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

__all__ = ["MetricsWriter", "ProgressBar"]


class MetricsWriter:
    """Appends metric records to ``<output_dir>/metrics.jsonl`` (and TensorBoard when asked)."""

    def __init__(
        self, output_dir: Path, *, tensorboard: bool = False, keep_lines: int | None = None
    ):
        self.path = output_dir / "metrics.jsonl"
        output_dir.mkdir(parents=True, exist_ok=True)
        if keep_lines is None:
            self.path.write_text("")
        else:
            lines = self.path.read_text().splitlines(keepends=True) if self.path.exists() else []
            self.path.write_text("".join(lines[:keep_lines]))
        self.lines = keep_lines or 0
        self._file = self.path.open("a", encoding="utf-8")
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(output_dir / "tensorboard"))

    def write(self, record: dict[str, Any]) -> None:
        clean = {k: _plain(v) for k, v in record.items()}
        self._file.write(json.dumps(clean) + "\n")
        self._file.flush()
        self.lines += 1
        if self._tb is not None:
            step = int(record.get("global_step", 0))
            for key, value in clean.items():
                if isinstance(value, float) and key not in ("step", "global_step"):
                    self._tb.add_scalar(f"{record.get('stage', 'run')}/{key}", value, step)

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def _plain(value: Any) -> Any:
    if isinstance(value, bool) or isinstance(value, (int, str)) or value is None:
        return value
    number = float(value)
    return number if math.isfinite(number) else str(number)


class ProgressBar:
    """A live progress bar on stderr (tqdm), showing the latest headline metrics."""

    SHOWN = ("reward", "accuracy", "loss", "eval/accuracy")

    def __init__(self, total: int, initial: int, description: str, enabled: bool = True):
        self._bar = None
        if enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=total,
                initial=initial,
                desc=description,
                file=sys.stderr,
                dynamic_ncols=True,
                leave=True,
            )
        self._shown: dict[str, str] = {}

    def update(self, metrics: dict[str, Any]) -> None:
        if self._bar is None:
            return
        for key in self.SHOWN:
            if key in metrics:
                self._shown[key.replace("eval/", "eval_")] = f"{float(metrics[key]):.3g}"
        self._bar.set_postfix(self._shown, refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
