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
- :meth:`~RayEnginePool.update_weights` sends the trainer's weights the way the engine class
  asks (:meth:`~rewardgym.core.engine.Engine.remote_weight_sync`): by default the
  ``state_dict`` goes into Ray's object store once and every actor loads it (into its model,
  then ``update_weights``; or, for an engine that ``owns_weights``, through its
  ``load_weights``); for a ``"collective"`` sync (vLLM actors on GPUs with
  ``engine.params.weight_sync: nccl``) the trainer broadcasts to every actor's engine at once
  (``start_broadcast`` here, ``weight_transfer`` in the actors). The pool knows no engine by
  name: it looks the class up in the registry and asks it.

:class:`RayVerifierPool` has the :class:`~rewardgym.core.verify.VerifierPool` API on
``ray.verifier_workers`` actors, each with a local one-worker ``VerifierPool`` (so the time and
memory limits hold).

:func:`start_ray` connects a run to Ray and returns a :class:`RayRuntime`: the run's Ray
verifier pool (when ``ray.verifier_workers > 0``), which the run passes to every env it makes
(``rewardgym.make(id, verifier_pool=pool)``), and :meth:`RayRuntime.close`, which closes that
pool and stops Ray if it started it. Nothing here is process-wide: two runs in one process hold
two runtimes.

Ray is the optional ``ray`` extra; a local cluster starts with ``ray.init`` when
``ray.address`` is None (``RAY_AUTH_MODE=disabled`` unless set, so no token is written under
the home directory).

Why one module over 400 lines: the engine pool and the verifier pool share Ray's start-up, the
actor shutdown and the run's :class:`RayRuntime`; split apart, each half would import the other.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import statistics
from collections.abc import Sequence
from typing import Any

from rewardgym.core.config import RaySection
from rewardgym.core.engine import WEIGHT_SYNCS, Engine, Generation, SamplingParams
from rewardgym.core.errors import ConfigError, require
from rewardgym.core.types import Task, Verdict
from rewardgym.core.verify import PoolStats

__all__ = [
    "EngineActor",
    "RayEnginePool",
    "RayRuntime",
    "RayVerifierPool",
    "chunk_rows",
    "init_ray",
    "start_ray",
]


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


class RayRuntime:
    """What a run holds on Ray: :attr:`verifier_pool` (a :class:`RayVerifierPool`, or None
    without ``ray.verifier_workers``) and whether it started Ray. Made by :func:`start_ray`;
    :meth:`close` undoes it."""

    def __init__(self, started_ray: bool, verifier_pool: RayVerifierPool | None) -> None:
        self.started_ray, self.verifier_pool = started_ray, verifier_pool
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Close the verifier pool, then stop Ray if :func:`start_ray` started it. Safe to call
        twice."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.verifier_pool is not None:
                self.verifier_pool.close()
        finally:
            if self.started_ray:
                import ray

                ray.shutdown()


def start_ray(section: RaySection) -> RayRuntime:
    """Connect to Ray for a run and, with ``ray.verifier_workers > 0``, start the run's
    :class:`RayVerifierPool`. The caller owns the result: pass ``.verifier_pool`` to the envs it
    makes, and call ``.close()`` when the run ends."""
    started = init_ray(section)
    pool = None
    try:
        if section.verifier_workers > 0:
            pool = RayVerifierPool(workers=section.verifier_workers, section=section)
    except BaseException:
        if started:
            import ray

            ray.shutdown()
        raise
    return RayRuntime(started, pool)


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
    ``engine_class`` and its checked ``config`` come from the pool (which looked them up in the
    registry). The model is built from ``model_spec`` (as the trainer builds it), then replaced
    by the trainer's weights at the pool's first weight update. The actor keeps the model only
    when the engine samples from it (``owns_weights`` False)."""

    def __init__(
        self, engine_class: type[Engine], config: Any, model_spec: dict[str, Any], threads: int
    ) -> None:
        import torch

        from rewardgym.runner.models import load_model

        torch.set_num_threads(max(1, threads))
        device = "cuda" if torch.cuda.is_available() and model_spec["gpus"] > 0 else "cpu"
        model, self.tokenizer = load_model(
            model_spec["name_or_path"], model_spec["params"], model_spec["dtype"], device
        )
        model.eval()
        self.engine = engine_class(model, self.tokenizer, config)
        # An engine with its own copy of the weights lets the transformers one go.
        self.model = None if engine_class.owns_weights else model

    def generate(
        self, prompts: list[list[int]], params: SamplingParams, first_row: int
    ) -> list[Generation]:
        return self.engine.generate(prompts, params, first_row=first_row)

    def set_weights(self, state: dict[str, Any]) -> None:
        """Load the trainer's ``state_dict``: into the engine (``owns_weights``), or into this
        actor's model, which the engine then samples from."""
        if self.model is None:
            self.engine.load_weights(state.items())
            return
        import torch

        with torch.no_grad():
            self.model.load_state_dict(state)
        self.engine.update_weights(self.model)

    def weight_transfer(self, method: str, *args: Any) -> None:
        """One step of the engine's collective weight sync (the trainer drives it)."""
        self.engine.weight_transfer(method, *args)

    def set_precision(self, dtype: Any) -> None:
        """Sample under autocast to ``dtype`` (None: off) on this actor's device, when the
        engine samples with this actor's model and can (the ``hf`` engine)."""
        setter = getattr(self.engine, "set_precision", None)
        if setter is None or self.model is None:
            return
        from rewardgym.runner.precision import Precision

        setter(Precision(next(self.model.parameters()).device.type, dtype))

    def metrics(self) -> dict[str, float]:
        return self.engine.metrics()

    def close(self) -> None:
        self.engine.close()


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
        from rewardgym.core.registry import ENGINES

        spec = ENGINES.get(engine_name)
        self.engine_class: type[Engine] = spec.load()
        self.engine_config = ENGINES.make_config(spec.id, engine_params)
        self.section, self.engine_name = section, engine_name
        self.weight_sync = self.engine_class.remote_weight_sync(
            self.engine_config, gpus=section.engine_gpus
        )
        if self.weight_sync not in WEIGHT_SYNCS:
            raise TypeError(
                f"The {engine_name!r} engine's remote_weight_sync returned "
                f"{self.weight_sync!r}; it must return one of {WEIGHT_SYNCS}. Fix the engine "
                "class."
            )
        self._started_ray = init_ray(section)
        import ray

        self._closed = False
        self._broadcast: Any = None  # made at the first update of a "collective" sync
        remote = ray.remote(EngineActor).options(
            num_cpus=section.engine_cpus, num_gpus=section.engine_gpus
        )
        actor_spec = {**model_spec, "gpus": section.engine_gpus}
        threads = max(1, int(section.engine_cpus))
        self.actors = [
            remote.remote(self.engine_class, self.engine_config, actor_spec, threads)
            for _ in range(section.engines)
        ]
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

        if self.weight_sync == "collective":
            if self._broadcast is None:
                self._broadcast = self.engine_class.start_broadcast(
                    self._transfer, model, self.engine_config, engines=len(self.actors)
                )
            self._broadcast.send_weights()
            return
        from rewardgym.runner.lora import merged_state_dict

        # a LoRA policy as its merged base model: the actors hold the base architecture
        state = {k: v.to("cpu") for k, v in merged_state_dict(model).items()}
        ref = ray.put(state)
        ray.get([a.set_weights.remote(ref) for a in self.actors])

    def set_precision(self, precision: Any) -> None:
        """Every actor samples under ``precision``'s autocast dtype (the trainer's
        :class:`~rewardgym.runner.precision.Precision` for a stage), on its own device."""
        self._check_open()
        import ray

        ray.get([a.set_precision.remote(precision.dtype) for a in self.actors])

    def _transfer(self, method: str, *args: Any) -> None:
        """Step ``method`` of the collective sync on every actor's engine, all at once."""
        import ray

        ray.get([a.weight_transfer.remote(method, *args) for a in self.actors])

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
