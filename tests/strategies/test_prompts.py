"""Prompts through the model's chat template (``model.chat``): single-turn prompts, multi-turn
replies, forced answers inside the assistant's turn, SFT rows, the no-template path as before,
the errors raised before training, and a GRPO run on a tiny model saved with a ChatML tokenizer.

The tokenizers are char-level with real chat templates (:mod:`rewardgym.testing.chat`), so ids
decode to exactly the text the template wrote."""

from __future__ import annotations

import dataclasses
import json
import re
import types

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from rewardgym.core.config import load_config  # noqa: E402
from rewardgym.core.config.schema import ChatSection  # noqa: E402
from rewardgym.core.engine import Engine, Generation, SamplingParams  # noqa: E402
from rewardgym.core.errors import ConfigError  # noqa: E402
from rewardgym.core.forcing import AnswerForcing, forcing_of  # noqa: E402
from rewardgym.core.make import make  # noqa: E402
from rewardgym.core.types import Task  # noqa: E402
from rewardgym.envs.python_tool import PythonToolEnv  # noqa: E402
from rewardgym.runner.model_config import DEFAULT_CHARSET  # noqa: E402
from rewardgym.runner.models import char_tokenizer  # noqa: E402
from rewardgym.strategies.demonstrations import supervised_batch  # noqa: E402
from rewardgym.strategies.prompts import PromptFormat  # noqa: E402
from rewardgym.strategies.rollouts import RolloutCollector, encode_prompt, encode_text  # noqa: E402
from rewardgym.strategies.thinking import force_answers, think  # noqa: E402
from rewardgym.testing.chat import QWEN2_TEMPLATE, chat_tokenizer, save_chat_model  # noqa: E402

PROMPT = "3+2="
QWEN_HEAD = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
QWEN_PROMPT = f"{QWEN_HEAD}<|im_start|>user\n3+2=<|im_end|>\n<|im_start|>assistant\n"
LLAMA_PROMPT = (
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n3+2=<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n"
)
RETRY = "Your answer is incorrect. Please try again."


@pytest.fixture(scope="module")
def qwen():
    return chat_tokenizer("qwen2")


@pytest.fixture(scope="module")
def llama():
    return chat_tokenizer("llama3")


def decode(tokenizer, ids) -> str:
    return tokenizer.decode(list(ids), skip_special_tokens=False)


def ids_of(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


class ScriptedEngine(Engine):
    """Answers every prompt with the next of ``replies`` (text; ``eos`` appends the eos id, as
    a model that stops on its end-of-turn token), recording the prompts it saw."""

    name = "scripted"

    def __init__(self, tokenizer, replies, eos=True):
        self.tokenizer, self.replies, self.eos, self.prompts = tokenizer, list(replies), eos, []

    def generate(self, prompts, params, *, first_row=0):
        self.prompts += [list(p) for p in prompts]
        text = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        ids = ids_of(self.tokenizer, text)[: params.max_new_tokens]
        stop = next((s for s in params.stop if s in text), None)
        if stop is not None:
            text = text[: text.index(stop) + len(stop)]
            ids = ids_of(self.tokenizer, text)
        end = [self.tokenizer.eos_token_id] if self.eos and stop is None else []
        ids = tuple(ids + end)
        return [Generation(ids, (-0.5,) * len(ids), text, "eos" if end else "length")] * len(
            prompts
        )

    def update_weights(self, model):
        pass


# -- single-turn prompts --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("style", "system", "expected"),
    [
        ("qwen2", None, QWEN_PROMPT),
        (
            "qwen2",
            "Answer with a number.",
            "<|im_start|>system\nAnswer with a number.<|im_end|>\n<|im_start|>user\n3+2=<|im_end|>"
            "\n<|im_start|>assistant\n",
        ),
        ("llama3", None, LLAMA_PROMPT),
        (
            "llama3",
            "Answer with a number.",
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nAnswer with a number."
            "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n3+2=<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n",
        ),
    ],
)
def test_a_prompt_is_the_rendered_conversation(style, system, expected):
    tokenizer = chat_tokenizer(style)
    prompts = PromptFormat(tokenizer, ChatSection(system_prompt=system))
    ids = prompts.prompt_ids(PROMPT)
    assert decode(tokenizer, ids) == expected
    assert ids == ids_of(tokenizer, expected)  # control tokens are single ids
    bos = tokenizer.bos_token_id
    assert ids.count(bos) == (1 if bos is not None else 0)  # the template's BOS, not doubled
    assert tokenizer.convert_tokens_to_ids("<bos>") not in ids  # the char tokenizer's own BOS


def test_think_open_and_template_kwargs(qwen):
    prompts = PromptFormat(qwen, ChatSection(think_open="<think>\n"))
    assert decode(qwen, prompts.prompt_ids(PROMPT)) == QWEN_PROMPT + "<think>\n"
    template = (
        QWEN2_TEMPLATE + "{%- if add_generation_prompt and not thinking %}/no_think{% endif %}"
    )
    chat = ChatSection(template=template, template_kwargs={"thinking": False})
    assert decode(qwen, PromptFormat(qwen, chat).prompt_ids(PROMPT)) == QWEN_PROMPT + "/no_think"


def test_a_template_in_the_config_replaces_the_tokenizers(llama):
    template = "{% for m in messages %}<|start_header_id|>{{ m.content }}{% endfor %}[go]"
    prompts = PromptFormat(llama, ChatSection(template=template))
    assert decode(llama, prompts.prompt_ids(PROMPT)) == "<|start_header_id|>3+2=[go]"


def test_without_a_template_prompts_and_replies_are_as_before(qwen, llama):
    tokenizer = char_tokenizer(DEFAULT_CHARSET)
    for chat in (ChatSection(), ChatSection(template="none")):
        prompts = PromptFormat(tokenizer, chat, turn_separator="\n\n")
        assert not prompts.templated
        assert prompts.prompt_ids(PROMPT) == [tokenizer.bos_token_id, *ids_of(tokenizer, PROMPT)]
        assert prompts.prompt_ids(PROMPT) == encode_prompt(tokenizer, PROMPT)
        reply = prompts.reply_ids(PROMPT, RETRY, (5, 6), "tool")
        assert reply == encode_text(tokenizer, f"\n\n{RETRY}\n\n")
    # "none" with a chat tokenizer: its BOS (if any) and the raw text
    none = ChatSection(template="none")
    assert decode(qwen, PromptFormat(qwen, none).prompt_ids(PROMPT)) == PROMPT
    assert (
        decode(llama, PromptFormat(llama, none).prompt_ids(PROMPT)) == f"<|begin_of_text|>{PROMPT}"
    )


# -- multi-turn replies --------------------------------------------------------------------------
QWEN_REPLY = f"<|im_start|>user\n{RETRY}<|im_end|>\n<|im_start|>assistant\n"
QWEN_TOOL = (
    f"<|im_start|>user\n<tool_response>\n{RETRY}\n</tool_response><|im_end|>\n"
    "<|im_start|>assistant\n"
)
LLAMA_REPLY = (
    f"<|start_header_id|>user<|end_header_id|>\n\n{RETRY}<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n"
)


@pytest.mark.parametrize(
    ("style", "role", "end", "turn"),
    [
        ("qwen2", "user", "<|im_end|>\n", QWEN_REPLY),
        ("qwen2", "tool", "<|im_end|>\n", QWEN_TOOL),
        ("llama3", "user", "<|eot_id|>", LLAMA_REPLY),
        ("llama3", "tool", "<|eot_id|>", LLAMA_REPLY),  # no tool role: a user turn
    ],
)
def test_reply_ids_are_the_templates_text_between_the_model_turn_and_the_next(
    style, role, end, turn
):
    tokenizer = chat_tokenizer(style)
    prompts = PromptFormat(tokenizer)
    eot = ids_of(tokenizer, end)[0]
    model = ids_of(tokenizer, "7")
    # stopped on its end-of-turn token: not added again
    reply = prompts.reply_ids(PROMPT, RETRY, [*model, eot], role)
    assert decode(tokenizer, reply) == end.removeprefix(tokenizer.eos_token) + turn
    assert decode(tokenizer, [*model, eot, *reply]) == f"7{end}{turn}"
    # cut at max_new_tokens or a stop string: the template's end of turn comes first
    reply = prompts.reply_ids(PROMPT, RETRY, model, role)
    assert decode(tokenizer, [*model, *reply]) == f"7{end}{turn}"


def test_the_reply_role_follows_the_env_and_the_template(qwen, llama):
    assert PythonToolEnv.reply_role == "tool"
    env = make("rewardgym/arithmetic-v0")
    assert env.unwrapped.reply_role == "user"
    tool = types.SimpleNamespace(unwrapped=types.SimpleNamespace(reply_role="tool"))
    assert PromptFormat(qwen).reply_role(tool) == "tool"
    assert PromptFormat(llama).reply_role(tool) == "user"  # Llama 3's template has no tool role
    bad = types.SimpleNamespace(reply_role="assistant")
    with pytest.raises(Exception, match=re.escape("reply_role must be one of ('user', 'tool')")):
        PromptFormat(qwen).reply_role(bad)


def test_a_multi_turn_row_holds_the_templates_turns_with_mask_zero(qwen):
    prompts = PromptFormat(qwen, ChatSection(think_open="<think>\n"))
    env = lambda: make("rewardgym/arithmetic-v0", prompt_style="plain", max_turns=2)  # noqa: E731
    task = Task(prompt=PROMPT, answer="5", id="t")
    for eos in (True, False):
        engine = ScriptedEngine(qwen, ["7", "5"], eos=eos)
        collector = RolloutCollector(env, engine, qwen, max_context=1024, prompts=prompts)
        (row,) = collector.collect([task], 1, SamplingParams(max_new_tokens=8, seed=0))
        eot = "<|im_end|>" if eos else ""
        expected_reply = f"<|im_end|>\n{QWEN_REPLY}<think>\n"[len(eot) :]
        assert decode(qwen, row.prompt_ids) == QWEN_PROMPT + "<think>\n"
        assert decode(qwen, row.response_ids) == f"7{eot}{expected_reply}5{eot}"
        turn1 = len(ids_of(qwen, "7")) + int(eos)
        reply = len(ids_of(qwen, expected_reply))
        assert row.model_mask == (True,) * turn1 + (False,) * reply + (True,) * turn1
        assert row.logprobs[turn1 : turn1 + reply] == (0.0,) * reply
        assert engine.prompts[1] == list(row.prompt_ids) + list(row.response_ids[: turn1 + reply])
        assert row.correct and row.turn_rewards == (0.0, 1.0)


# -- thinking traces and forced answers ---------------------------------------------------------
def test_forced_answers_are_inside_the_assistant_turn(qwen):
    chat = ChatSection(think_open="<think>\n", think_end="</reasoning>", answer_cue="\nAnswer: ")
    prompts = PromptFormat(qwen, chat)
    env = make("rewardgym/arithmetic-v0", prompt_style="plain").unwrapped
    task = Task(prompt=PROMPT, answer="5", id="t")
    engine = ScriptedEngine(qwen, ["3, 4, 5</reasoning>more", "5"], eos=False)
    (trace,) = think(engine, prompts, env, [task], 1, SamplingParams(max_new_tokens=64))
    assert trace.ended and trace.text == "3, 4, 5</reasoning>"
    assert decode(qwen, trace.prompt_ids) == QWEN_PROMPT + "<think>\n"
    cuts = [[2, len(trace)]]
    answers = force_answers(engine, prompts, env, [trace], cuts, 1, SamplingParams(4))
    head = QWEN_PROMPT + "<think>\n"
    cut = f"{head}3,...\n\n...\n\n</reasoning>\nAnswer: "  # truncation marker: the env's
    assert decode(qwen, answers[0].context) == cut
    assert decode(qwen, answers[1].context) == f"{head}3, 4, 5</reasoning>\nAnswer: "
    assert answers[0].suffix_len == len(ids_of(qwen, "...\n\n...\n\n</reasoning>\nAnswer: "))
    assert all(a.verdict.correct for a in answers)  # one </reasoning> in each trace


def test_forcing_overrides_replace_the_env_strings_or_fail_clearly():
    env = make("rewardgym/arithmetic-v0").unwrapped
    forcing = forcing_of(env, think_end="</r>", answer_cue="A: ")
    assert forcing == AnswerForcing(think_end="</r>", answer_cue="A: ")
    assert forcing_of(env) == AnswerForcing()

    @dataclasses.dataclass(frozen=True)
    class Tagged(AnswerForcing):
        tag: str = "x"

    class Custom(AnswerForcing):
        def __init__(self):
            super().__init__(think_end="</t>")

    env.answer_forcing = Tagged(tag="y")
    assert forcing_of(env, think_end="</r>") == Tagged("</r>", tag="y")
    env.answer_forcing = Custom()
    with pytest.raises(ConfigError, match=re.escape("cannot be copied with new strings")):
        forcing_of(env, think_end="</r>")
    del env.answer_forcing

    class Legacy(type(env)):
        def forced_answer_suffix(self, truncated):
            return "!"

    legacy = make("rewardgym/arithmetic-v0").unwrapped
    legacy.__class__ = Legacy
    with pytest.warns(DeprecationWarning):
        message = "model.chat.answer_cue cannot replace the answer-forcing strings of Legacy"
        with pytest.raises(ConfigError, match=re.escape(message)):
            forcing_of(legacy, answer_cue="A: ")


# -- SFT rows --------------------------------------------------------------------------------------
def test_sft_rows_are_the_rendered_prompt_then_the_answer_and_end_of_turn(qwen):
    tokenizer = char_tokenizer(DEFAULT_CHARSET)
    for tok, prompt_text, end in (
        (qwen, QWEN_PROMPT, "<|im_end|>"),
        (tokenizer, f"<bos>{PROMPT}", "<eos>"),  # no template: BOS, text, EOS, as before
    ):
        ctx = types.SimpleNamespace(tokenizer=tok, prompts=PromptFormat(tok), pad_id=0)
        batch = supervised_batch(ctx, [(PROMPT, "5")])  # one row: no padding
        assert decode(tok, batch.input_ids[0, : batch.prompt_len]) == prompt_text
        assert decode(tok, batch.response_ids[0][batch.mask[0] == 1]) == f"5{end}"
        assert batch.mask[0].tolist() == [1.0, 1.0]


# -- errors before training ----------------------------------------------------------------------
def test_keys_that_need_a_template_are_errors_without_one(qwen):
    tokenizer = char_tokenizer(DEFAULT_CHARSET)
    message = (
        "model.chat.system_prompt, model.chat.think_open apply only to prompts rendered through "
        "a chat template, but model.chat.template is 'none', so they would be ignored."
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        PromptFormat(qwen, ChatSection(template="none", system_prompt="Hi.", think_open="<t>"))
    message = (
        "model.chat.think_open applies only to prompts rendered through a chat template, but "
        "model.chat.template is 'auto' and the tokenizer has no chat template, so it would be "
        "ignored."
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        PromptFormat(tokenizer, ChatSection(think_open="<think>\n"))
    with pytest.raises(ConfigError, match=re.escape("model.chat.template_kwargs sets tokenize")):
        PromptFormat(qwen, ChatSection(template_kwargs={"tokenize": True}))
    PromptFormat(tokenizer, ChatSection(think_end="</r>"))  # forcing strings need no template


@pytest.mark.parametrize(
    ("template", "system", "message"),
    [
        (
            "{% for m in messages %}{{ m.content }{% endfor %}",
            None,
            "The chat template in model.chat.template is not valid Jinja: unexpected '}' (line 1)",
        ),
        (
            "{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('System role "
            "not supported') }}{% endif %}{{ m.content }}{% endfor %}",
            "Be brief.",
            "failed to render a conversation of roles [system, user]: TemplateError: System role "
            "not supported. If the template takes no system message, remove "
            "model.chat.system_prompt.",
        ),
        ("Hello", None, "rendered a prompt of the env without the prompt's text"),
    ],
)
def test_a_template_that_cannot_render_is_a_config_error(qwen, template, system, message):
    prompts = PromptFormat(qwen, ChatSection(template=template, system_prompt=system))
    with pytest.raises(ConfigError, match=re.escape(message)):
        prompts.check(PROMPT)


def test_a_template_that_rewrites_earlier_turns_cannot_take_replies(qwen):
    # earlier assistant turns are rendered without their content (as templates that drop the
    # thinking of earlier turns do)
    hiding = QWEN2_TEMPLATE.replace(
        "'\\n' + message['content'] + '<|im_end|>\\n'",
        "'\\n' + (message['content'] if loop.last or message['role'] != 'assistant' else "
        "'[hidden]') + '<|im_end|>\\n'",
    )
    assert hiding != QWEN2_TEMPLATE
    prompts = PromptFormat(qwen, ChatSection(template=hiding))
    prompts.check(PROMPT)  # single-turn prompts are fine
    with pytest.raises(ConfigError, match="renders the earlier turns differently once the env"):
        prompts.check(PROMPT, reply=RETRY)
    # the last assistant turn gets an empty thinking block the generation prompt lacks (Qwen3)
    thinking = QWEN2_TEMPLATE.replace(
        "'<|im_start|>' + message['role'] + '\\n' + message['content']",
        "'<|im_start|>' + message['role'] + '\\n' + ('<think></think>' if message['role'] == "
        "'assistant' else '') + message['content']",
    )
    prompts = PromptFormat(qwen, ChatSection(template=thinking))
    with pytest.raises(ConfigError, match="renders the model's turn after other text than the"):
        prompts.check(PROMPT, reply=RETRY)


TINY = {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "max_position_embeddings": 256}


def _run_config(tmp_path, model, chat=None, **env):
    return load_config(
        {
            "env": {
                "id": "rewardgym/arithmetic-v0",
                "params": {"difficulty": 1, "prompt_style": "plain", "max_value": 3, **env},
            },
            "model": {"name_or_path": str(model), "chat": chat or {}},
            "algorithm": {"name": "grpo"},
            "rollout": {"group_size": 2, "prompts_per_step": 2, "max_new_tokens": 4},
            "eval": {"episodes": 2, "samples": 1},
            "trainer": {"steps": 2, "lr": 1e-3},
            "output_dir": str(tmp_path / "run"),
        }
    )


def test_a_bad_template_fails_before_the_first_step(tmp_path):
    from rewardgym.runner.trainer import Trainer

    model = save_chat_model(tmp_path / "model", "qwen2", **TINY)
    config = _run_config(tmp_path, model, {"template": "{% if %}"})
    with pytest.raises(ConfigError, match="is not valid Jinja"):
        Trainer(config, progress=False, log=lambda m: None).run()
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
    config = _run_config(tmp_path, model, {"template": "none", "system_prompt": "Hi."})
    with pytest.raises(ConfigError, match="model.chat.template is 'none'"):
        Trainer(config, progress=False, log=lambda m: None, overwrite=True).run()


# -- end to end ----------------------------------------------------------------------------------
def test_grpo_trains_on_templated_prompts(tmp_path, monkeypatch):
    from rewardgym.runner.engines.hf import HFEngine
    from rewardgym.runner.trainer import Trainer

    seen: list[list[int]] = []
    generate = HFEngine.generate

    def recording(self, prompts, params, **kwargs):
        seen.extend(list(p) for p in prompts)
        return generate(self, prompts, params, **kwargs)

    monkeypatch.setattr(HFEngine, "generate", recording)
    model = save_chat_model(tmp_path / "model", "qwen2", **TINY)
    config = _run_config(tmp_path, model, {"system_prompt": "Add."}, max_turns=2)
    Trainer(config, progress=False, log=lambda m: None).run()
    tokenizer = chat_tokenizer("qwen2")
    texts = [decode(tokenizer, p) for p in seen]
    head = re.compile(
        r"<\|im_start\|>system\nAdd\.<\|im_end\|>\n<\|im_start\|>user\n\d[-+*]\d=<\|im_end\|>\n"
        r"<\|im_start\|>assistant\n"
    )
    bad = [t for t in texts if not head.match(t)]
    assert texts and not bad, bad[:3]
    second_turns = [t for t in texts if "<|im_start|>user\nYour answer" in t]
    assert second_turns and all(t.endswith("<|im_start|>assistant\n") for t in second_turns)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2]


def test_think_open_that_the_template_already_writes_is_a_config_error():
    from rewardgym.testing.standin import R1_TEMPLATE

    tokenizer = chat_tokenizer("qwen2")
    tokenizer.chat_template = R1_TEMPLATE  # its generation prompt ends with "<think>\n"
    PromptFormat(tokenizer, ChatSection()).check("What is 2+2?")
    with pytest.raises(ConfigError, match="open the thinking twice"):
        PromptFormat(tokenizer, ChatSection(think_open="<think>\n")).check("What is 2+2?")
