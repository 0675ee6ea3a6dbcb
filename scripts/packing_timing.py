"""Forward + backward of a GRPO update, padded vs packed, on the benchmark model of
benchmarks/grpo_step.py (tiny Llama: hidden 256, 4 layers, 4 heads), 64 rows with prompts of
8..24 tokens and responses of 4..64 tokens (uniform), fp32, CPU.

    python scripts/packing_timing.py [REPEATS]
"""

import statistics
import sys
import time
from types import SimpleNamespace

import torch

from rewardgym.algorithms.base import LossScale
from rewardgym.algorithms.grpo import GRPO, GRPOConfig
from rewardgym.core.config import TrainerSection
from rewardgym.runner.learner import PolicyLearner, _micro_batches
from rewardgym.runner.models import TinyModelConfig, build_tiny_model
from rewardgym.strategies.base import LossPart
from rewardgym.strategies.batch import pack
from rewardgym.strategies.standard import policy_loss

REPS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
g = torch.Generator().manual_seed(0)
N = 64
prompts = [
    [
        1,
        *torch.randint(
            4, 90, (int(torch.randint(7, 24, (1,), generator=g)),), generator=g
        ).tolist(),
    ]
    for _ in range(N)
]
responses = [
    torch.randint(4, 90, (int(torch.randint(4, 65, (1,), generator=g)),), generator=g).tolist()
    for _ in range(N)
]
batch = pack(
    prompts, responses, [[1.0] * len(r) for r in responses], [[-1.0] * len(r) for r in responses], 0
)
real = int(batch.attention_mask.sum())
print(
    f"rows {N}, padded {tuple(batch.input_ids.shape)} = {batch.input_ids.numel()} cells, "
    f"real tokens {real} ({real / batch.input_ids.numel():.0%}); torch threads {torch.get_num_threads()}"
)

model, _ = build_tiny_model(TinyModelConfig(hidden_size=256, num_layers=4, num_heads=4))
algorithm = GRPO(GRPOConfig())
adv = torch.randn(N)[:, None].expand_as(batch.mask).contiguous()


class NoEngine:
    def update_weights(self, model):
        pass


def learner_for(keys):
    trainer = TrainerSection(max_grad_norm=1e9, **keys)
    learner = PolicyLearner(
        model, None, torch.optim.SGD(model.parameters(), lr=0.0), None, trainer, NoEngine()
    )
    ctx = SimpleNamespace(learner=learner, algorithm=algorithm)
    scale = LossScale(N, int(batch.mask.sum()), batch.mask.shape[1])
    return learner, LossPart(batch, policy_loss(ctx, adv, batch.mask, scale, None, 1.0))


cases = {
    "padded, 1 micro-batch": {},
    "padded, grad_accum=4": {"grad_accum": 4},
    "padded, micro_batch_tokens=1024": {"micro_batch_tokens": 1024},
    "packed, 1 sequence": {"packing": True},
    "packed, micro_batch_tokens=1024": {"micro_batch_tokens": 1024, "packing": True},
    "packed, micro_batch_tokens=512": {"micro_batch_tokens": 512, "packing": True},
    "packed, micro_batch_tokens=256": {"micro_batch_tokens": 256, "packing": True},
}
for attention in ("sdpa", "eager"):
    model.set_attn_implementation(attention)
    built = {name: learner_for(keys) for name, keys in cases.items()}
    times = {name: [] for name in cases}
    norms = {}
    for k in range(REPS + 1):
        for name, (learner, part) in built.items():
            start = time.perf_counter()
            norms[name] = learner.update([part])["grad_norm"]
            if k:
                times[name].append(time.perf_counter() - start)
    for name, (learner, _) in built.items():
        count = len(_micro_batches(batch, None, learner.trainer))
        print(
            f"{attention:6s} {name:34s} {count:2d} micro-batches {statistics.median(times[name]) * 1000:8.1f} ms "
            f"(min {min(times[name]) * 1000:7.1f})  grad_norm {norms[name]:.6f}"
        )
