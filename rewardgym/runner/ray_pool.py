"""Scale-out on Ray: rollout engines as actors, and the verifier pool on Ray workers.

:class:`RayEnginePool` is an :class:`~rewardgym.core.engine.Engine` made of
``ray.engines`` actors, each running an ``engine.name`` engine (``hf`` or ``vllm``, or a
plugin's) on its own copy of the policy. The trainer stays in this process and uses the pool
like any engine:

- :meth:`~RayEnginePool.generate` cuts the prompts into chunks of whole prompt groups (runs of
  identical prompts, such as the G samples of a task, stay on one actor, where they share a
  prefill or prefix cache) and deals them out: ``round_robin`` sends chunk k to actor k mod N,
  all at once; ``least_loaded`` gives each actor one chunk and the next chunk to whichever
  finishes first. Each chunk carries its ``first_row``, and every engine seeds row i from
  ``(seed, i)`` (:func:`~rewardgym.core.engine.row_seed`), so the samples are those one
  engine would draw for the whole batch, whatever the number of actors, the routing or the
  timing (up to float rounding of the logits with the batch shape).
- :meth:`~RayEnginePool.update_weights` puts the trainer's ``state_dict`` in Ray's object store
  once and every actor loads it (hf: ``load_state_dict``; vllm: in-place reload). With vLLM
  actors on GPUs and ``engine.params.weight_sync: nccl``, the trainer broadcasts the weights to
  all actors' workers over NCCL instead (vLLM's weight-transfer engine; GPU only).

:class:`RayVerifierPool` has the :class:`~rewardgym.core.verify.VerifierPool` API on
``ray.verifier_workers`` actors, each with a local one-worker ``VerifierPool`` (so the time and
memory limits hold). :func:`start_ray_runtime` installs it as the shared pool that envs score
with (:func:`~rewardgym.core.verify.set_shared_pool`).

Ray is the optional ``ray`` extra; a local cluster starts with ``ray.init`` when
``ray.address`` is None (``RAY_AUTH_MODE=disabled`` unless set, so no token is written under
the home directory).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import statistics
from collections.abc import Sequence
from typing import Any

from rewardgym.core.config import RaySection
from rewardgym.core.engine import Engine, Generation, SamplingParams
from rewardgym.core.errors import ConfigError, require
from rewardgym.core.types import Task, Verdict
from rewardgym.core.verify import PoolStats

__all__ = [
    "EngineActor",
    "RayEnginePool",
    "RayVerifierPool",
    "chunk_rows",
    "close_ray_runtime",
    "init_ray",
    "start_ray_runtime",
]

_runtime: list[Any] = []  # (ray started here?, verifier pool or None) of the running run


def init_ray(section: RaySection) -> bool:
    """Connect to (or start) the Ray cluster of ``section``; True when this call started it."""
    ray = require("ray", "ray", "Ray scale-out (ray.engines, ray.verifier_workers)")
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
    if section.address is None:
        options["num_cpus"] = section.num_cpus
    else:
        options["address"] = section.address
    ray.init(**options)
    return True


def start_ray_runtime(section: RaySection) -> None:
    """Connect to Ray for a run and, with ``ray.verifier_workers``, put the envs' verification
    on a :class:`RayVerifierPool`. :func:`close_ray_runtime` undoes both."""
    close_ray_runtime()
    started = init_ray(section)
    pool = None
    if section.verifier_workers > 0:
        from rewardgym.core.verify import set_shared_pool

        pool = RayVerifierPool(workers=section.verifier_workers, section=section)
        set_shared_pool(pool)
    _runtime[:] = [(started, pool)]


def close_ray_runtime() -> None:
    """Close the run's Ray verifier pool and stop Ray if :func:`start_ray_runtime` started it.
    A no-op when no Ray runtime is up."""
    if not _runtime:
        return
    (started, pool), _runtime[:] = _runtime[0], []
    if pool is not None:
        from rewardgym.core.verify import set_shared_pool

        set_shared_pool(None)
        pool.close()
    if started:
        import ray

        ray.shutdown()


def _close_actors(actors: list[Any], stop_ray: bool, timeout: float) -> None:
    """Let each actor close what it holds (up to ``timeout`` s), end the actors, and stop Ray
    when ``stop_ray``."""
    import ray

    try:
        ray.get([a.close.remote() for a in actors], timeout=timeout)
    finally:
        for actor in actors:
            ray.kill(actor)
        if stop_ray:
            ray.shutdown()


def chunk_rows(prompts: Sequence[Sequence[int]], chunks: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]``: at most ``chunks`` contiguous slices of about equal rows, cut
    only between groups of identical consecutive prompts."""
    bounds, start = [], 0
    for i in range(1, len(prompts) + 1):
        if i == len(prompts) or list(prompts[i]) != list(prompts[i - 1]):
            bounds.append((start, i))
            start = i
    target = len(prompts) / max(1, chunks)
    out: list[tuple[int, int]] = []
    for first, stop in bounds:
        if out and (out[-1][1] - out[-1][0]) + (stop - first) / 2 <= target:
            out[-1] = (out[-1][0], stop)
        else:
            out.append((first, stop))
    return out


class EngineActor:
    """One engine and its copy of the policy, inside a Ray actor (``ray.remote(EngineActor)``).
    The model is built from ``model_spec`` (as the trainer builds it), then replaced by the
    trainer's weights at the pool's first :meth:`set_weights`."""

    def __init__(
        self,
        engine_name: str,
        engine_params: dict[str, Any],
        model_spec: dict[str, Any],
        threads: int,
    ) -> None:
        import torch

        from rewardgym.core.registry import ENGINES
        from rewardgym.runner.models import load_model

        torch.set_num_threads(max(1, threads))
        device = "cuda" if torch.cuda.is_available() and model_spec["gpus"] > 0 else "cpu"
        self.model, self.tokenizer = load_model(
            model_spec["name_or_path"], model_spec["params"], model_spec["dtype"], device
        )
        self.model.eval()
        spec = ENGINES.get(engine_name)
        config = ENGINES.make_config(spec.id, engine_params)
        self.engine = spec.load()(self.model, self.tokenizer, config)
        if hasattr(self.engine, "load_weights"):  # the engine keeps its own copy (vllm)
            self.model = self.engine.model = None  # free the transformers copy

    def generate(
        self, prompts: list[list[int]], params: SamplingParams, first_row: int
    ) -> list[Generation]:
        return self.engine.generate(prompts, params, first_row=first_row)

    def set_weights(self, state: dict[str, Any]) -> None:
        """Load the trainer's ``state_dict`` into this actor's model and engine."""
        import torch

        if self.model is None:  # an engine with its own copy of the weights (vllm)
            self.engine.load_weights(state.items())
            return
        with torch.no_grad():
            self.model.load_state_dict(state)
        self.engine.update_weights(self.model)

    def metrics(self) -> dict[str, float]:
        return self.engine.metrics()

    # vLLM's weight-sync protocol, for the NCCL broadcast (GPU only)
    def init_weight_transfer_engine(self, init_info: dict[str, Any]) -> None:
        self.engine.llm.collective_rpc("init_weight_transfer_engine", args=(init_info,))

    def start_weight_update(self) -> None:
        self.engine.llm.collective_rpc("start_weight_update")

    def update_weights(self, update_info: Any) -> None:
        self.engine.llm.collective_rpc("update_weights", args=(update_info,))

    def finish_weight_update(self) -> None:
        self.engine.llm.collective_rpc("finish_weight_update")
        self.engine.llm.reset_prefix_cache()

    def close(self) -> None:
        self.engine.close()


class _ActorsClient:
    """vLLM's weight-sync client protocol over the pool's actors: each call fans out to all."""

    def __init__(self, actors: list[Any]) -> None:
        self.actors = actors

    def _all(self, method: str, *args: Any) -> None:
        import ray

        ray.get([getattr(a, method).remote(*args) for a in self.actors])

    def init_weight_transfer_engine(self, init_info: dict[str, Any]) -> None:
        self._all("init_weight_transfer_engine", init_info)

    def start_weight_update(self) -> None:
        self._all("start_weight_update")

    def update_weights(self, update_info: Any) -> None:
        self._all("update_weights", update_info)

    def finish_weight_update(self, weight_version: str | None = None) -> None:
        self._all("finish_weight_update")


class RayEnginePool(Engine):
    """``section.engines`` engine actors behind the :class:`Engine` interface; see the module
    docstring. ``model`` is the trainer's model: its weights are sent to the actors at once."""

    name = "ray"

    def __init__(
        self,
        model: Any,
        engine_name: str,
        engine_params: dict[str, Any],
        model_spec: dict[str, Any],
        section: RaySection,
    ) -> None:
        if section.engines < 1:
            raise ConfigError(
                f"ray.engines must be >= 1 for an engine pool, got {section.engines}."
            )
        self.section, self.engine_name = section, engine_name
        self._started_ray = init_ray(section)
        import ray

        self._closed = False
        self._nccl: Any = None
        self._nccl_sync = engine_name == "vllm" and engine_params.get("weight_sync") == "nccl"
        if self._nccl_sync and section.engine_gpus <= 0:
            raise ConfigError(
                "engine.params.weight_sync=nccl broadcasts to vLLM actors on GPUs: set "
                "ray.engine_gpus >= 1 (or use weight_sync=reload)."
            )
        remote = ray.remote(EngineActor).options(
            num_cpus=section.engine_cpus, num_gpus=section.engine_gpus
        )
        spec = {**model_spec, "gpus": section.engine_gpus}
        threads = max(1, int(section.engine_cpus))
        self.actors = [
            remote.remote(engine_name, dict(engine_params), spec, threads)
            for _ in range(section.engines)
        ]
        self._tp = int(engine_params.get("tensor_parallel_size", 1))
        self.update_weights(model)

    # -- sampling -------------------------------------------------------------------------------
    def generate(
        self, prompts: Sequence[Sequence[int]], params: SamplingParams, *, first_row: int = 0
    ) -> list[Generation]:
        """The prompts dealt to the actors in chunks of whole prompt groups (see the module
        docstring); one :class:`Generation` per prompt, in order."""
        self._check_open()
        import ray

        if not prompts:
            return []
        chunks = chunk_rows(prompts, len(self.actors) * self.section.chunks_per_engine)
        results: dict[int, list[Generation]] = {}

        def submit(k: int, actor: Any) -> Any:
            start, stop = chunks[k]
            rows = [list(p) for p in prompts[start:stop]]
            return actor.generate.remote(rows, params, first_row + start)

        if self.section.routing == "round_robin":
            refs = [submit(k, self.actors[k % len(self.actors)]) for k in range(len(chunks))]
            for k, out in enumerate(ray.get(refs)):
                results[k] = out
        else:  # least_loaded: one chunk per actor in flight, the next to the first one free
            pending = iter(range(len(chunks)))
            running: dict[Any, tuple[int, Any]] = {}
            for actor, k in zip(self.actors, pending, strict=False):
                running[submit(k, actor)] = (k, actor)
            while running:
                done, _ = ray.wait(list(running), num_returns=1)
                k, actor = running.pop(done[0])
                results[k] = ray.get(done[0])
                following = next(pending, None)
                if following is not None:
                    running[submit(following, actor)] = (following, actor)
        return list(itertools.chain.from_iterable(results[k] for k in range(len(chunks))))

    def metrics(self) -> dict[str, float]:
        """The actors' engine metrics: counts (``..._queries``) summed, others averaged."""
        import ray

        per_actor = ray.get([a.metrics.remote() for a in self.actors])
        keys = {k for m in per_actor for k in m}
        return {
            k: (sum if k.endswith("_queries") else statistics.fmean)(
                [m.get(k, 0.0) for m in per_actor]
            )
            for k in sorted(keys)
        }

    # -- weights --------------------------------------------------------------------------------
    def update_weights(self, model: Any) -> None:
        """Every actor samples from ``model``'s current weights from now on."""
        self._check_open()
        import ray

        if self._nccl_sync:
            if self._nccl is None:
                from rewardgym.runner.engines.vllm import VLLMEngineConfig, start_nccl_sync

                self._nccl = start_nccl_sync(
                    _ActorsClient(self.actors),
                    model,
                    VLLMEngineConfig(weight_sync="nccl"),
                    workers=len(self.actors) * self._tp,
                )
            self._nccl.send_weights()
            return
        state = {k: v.detach().to("cpu") for k, v in model.state_dict().items()}
        ref = ray.put(state)
        ray.get([a.set_weights.remote(ref) for a in self.actors])

    # -- clean-up -------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the actors' engines, end the actors, and stop Ray if this pool started it."""
        if self._closed:
            return
        self._closed = True
        _close_actors(self.actors, self._started_ray, timeout=120)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("This Ray engine pool is closed; build a new one.")


class _VerifierActor:
    """A one-worker :class:`~rewardgym.core.verify.VerifierPool` in a Ray actor."""

    def __init__(self, timeout: float, memory_mb: int | None) -> None:
        from rewardgym.core.verify import VerifierPool

        self.pool = VerifierPool(workers=1, timeout=timeout, memory_mb=memory_mb)

    def verify(self, response: str, task: Task, verifier: Any, timeout: float | None) -> Verdict:
        return self.pool.verify(response, task, verifier, timeout=timeout)

    def verify_batch(
        self, responses: list[str], tasks: list[Task], verifier: Any, timeout: float | None
    ) -> list[Verdict]:
        return self.pool.verify_batch(responses, tasks, verifier, timeout=timeout)

    def start(self, verifiers: list[Any]) -> None:
        self.pool.start(*verifiers)

    def stats(self) -> dict[str, int]:
        return dataclasses.asdict(self.pool.stats)

    def close(self) -> None:
        self.pool.close()


class RayVerifierPool:
    """:class:`~rewardgym.core.verify.VerifierPool`'s API on ``workers`` Ray actors, each with
    a one-worker local pool (same time and memory limits, same ``None`` verdicts)."""

    def __init__(
        self,
        verifier: Any = None,
        *,
        workers: int = 2,
        timeout: float = 5.0,
        memory_mb: int | None = 2048,
        section: RaySection | None = None,
    ) -> None:
        section = section or RaySection(verifier_workers=workers)
        self._started_ray = init_ray(section)
        import ray

        remote = ray.remote(_VerifierActor).options(num_cpus=0.5)
        self.actors = [remote.remote(timeout, memory_mb) for _ in range(workers)]
        self._default = verifier
        self._next = itertools.count()
        self._closed = False

    def _verifier(self, verifier: Any) -> Any:
        chosen = self._default if verifier is None else verifier
        if chosen is None:
            raise TypeError("No verifier to run: pass one to RayVerifierPool or to verify().")
        return chosen

    def verify(
        self, response: str, task: Task, verifier: Any = None, *, timeout: float | None = None
    ) -> Verdict:
        import ray

        actor = self.actors[next(self._next) % len(self.actors)]
        return ray.get(actor.verify.remote(response, task, self._verifier(verifier), timeout))

    def verify_batch(
        self,
        responses: Sequence[str],
        tasks: Sequence[Task],
        verifier: Any = None,
        *,
        timeout: float | None = None,
    ) -> list[Verdict]:
        import ray

        if len(responses) != len(tasks):
            raise ValueError(
                f"verify_batch got {len(responses)} responses but {len(tasks)} tasks; pass one "
                "task per response."
            )
        chosen = self._verifier(verifier)
        lanes: list[list[int]] = [[] for _ in self.actors]
        for i in range(len(responses)):
            lanes[i * len(self.actors) // max(1, len(responses))].append(i)
        refs = [
            actor.verify_batch.remote(
                [responses[i] for i in lane], [tasks[i] for i in lane], chosen, timeout
            )
            for actor, lane in zip(self.actors, lanes, strict=True)
        ]
        out: list[Verdict | None] = [None] * len(responses)
        for lane, verdicts in zip(lanes, ray.get(refs), strict=True):
            for i, verdict in zip(lane, verdicts, strict=True):
                out[i] = verdict
        return out  # type: ignore[return-value]

    def start(self, *verifiers: Any) -> None:
        import ray

        chosen = [v for v in (self._default, *verifiers) if v is not None]
        ray.get([a.start.remote(chosen) for a in self.actors])

    @property
    def stats(self) -> PoolStats:
        import ray

        total = dict.fromkeys((f.name for f in dataclasses.fields(PoolStats)), 0)
        for counts in ray.get([a.stats.remote() for a in self.actors]):
            for key, value in counts.items():
                total[key] += value
        return PoolStats(**total)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        _close_actors(self.actors, self._started_ray, timeout=60)

    def __enter__(self) -> RayVerifierPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
