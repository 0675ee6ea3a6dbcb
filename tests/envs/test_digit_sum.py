"""``rewardgym/digit_sum-v0``: tasks, the running-sum scratchpad, truncated gold responses and
their scores through the per-budget hooks."""

from __future__ import annotations

import pytest

import rewardgym
from rewardgym.core.errors import ConfigError
from rewardgym.core.types import Task
from rewardgym.envs.digit_sum import DigitSumConfig, DigitSumEnv
from rewardgym.strategies.episodic import EpisodeSegmenter

DIGITS = [6, 0, 4, 8, 7, 6, 4]
TASK = Task(
    prompt="6+0+4+8+7+6+4=", answer="35", id="digit_sum:6+0+4+8+7+6+4", metadata={"digits": DIGITS}
)


def test_tasks_are_seeded_sums_of_digits():
    env = DigitSumEnv()
    first = [env.reset(seed=s)[1]["task"] for s in range(20)]
    again = [env.reset(seed=s)[1]["task"] for s in range(20)]
    assert first == again
    for task in first:
        digits = task.metadata["digits"]
        assert 10 <= len(digits) <= 12 and all(0 <= d <= 9 for d in digits)
        assert task.prompt == "+".join(map(str, digits)) + "="
        assert task.answer == str(sum(digits))


def test_scratchpad_has_a_paragraph_every_chunk_sums():
    assert DigitSumEnv(DigitSumConfig(chunk=4)).scratchpad(TASK) == "6,6,10,18\n\n25,31,35"
    assert DigitSumEnv(DigitSumConfig(chunk=3)).scratchpad(TASK) == "6,6,10\n\n18,25,31\n\n35"


def test_full_solution_scores_correct():
    env = DigitSumEnv(DigitSumConfig(cut_prob=0))
    solution = env.solution(TASK)
    assert solution == "6,6,10,18\n\n25,31,35</think>\n\n**Final Answer**\n35"
    env.reset(options={"task": TASK})
    _, reward, terminated, _, info = env.step(solution)
    assert reward == 1.0 and terminated and info["correct"]


def test_cut_solution_is_a_prefix_then_the_truncated_suffix():
    env = DigitSumEnv(DigitSumConfig(cut_prob=1))
    solution = env.solution(TASK)
    forcing = env.answer_forcing
    suffix = forcing.suffix(True)
    head, _, answer = solution.rpartition(suffix)
    assert answer == "35" and env.scratchpad(TASK).startswith(head)
    assert len(head) < len(env.scratchpad(TASK))
    assert env.solution(TASK) == solution  # the same task always gives the same response
    verdict = forcing.score(env, head + suffix, answer, TASK)
    assert verdict.correct


def test_cut_share_follows_cut_prob():
    env = DigitSumEnv(DigitSumConfig(cut_prob=0.5))
    tasks = [env.reset(seed=s)[1]["task"] for s in range(400)]
    marker = env.answer_forcing.truncation_marker
    cut = sum(marker in env.solution(t) for t in tasks) / len(tasks)
    assert 0.4 <= cut <= 0.6


def test_forced_answers_are_scored_by_the_answer_alone():
    env = DigitSumEnv()
    forcing = env.answer_forcing
    trace = "6,6,10" + forcing.suffix(True)
    assert forcing.score(env, trace, "35", TASK).correct
    assert forcing.score(env, trace, "34", TASK).reward == 0.0


def test_every_paragraph_is_an_episode_with_digit_markers():
    env = DigitSumEnv(DigitSumConfig(chunk=4))
    task = env.reset(seed=3)[1]["task"]
    task = Task(task.prompt, task.answer, task.id, {"digits": [1] * 12})
    segmenter = EpisodeSegmenter(markers=tuple("0123456789"), min_gap=0)
    assert len(segmenter.episodes(env.scratchpad(task))) == 3


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"min_digits": 5, "max_digits": 4}, "min_digits"),
        ({"chunk": 0}, "chunk"),
        ({"cut_prob": 1.5}, "cut_prob"),
    ],
)
def test_bad_params_say_what_is_wrong(params, words):
    with pytest.raises(ConfigError, match=words):
        DigitSumConfig(**params)


def test_registered_and_made_by_id():
    env = rewardgym.make("rewardgym/digit_sum-v0", min_digits=3, max_digits=3)
    _, info = env.reset(seed=0)
    assert len(info["task"].metadata["digits"]) == 3
