"""Prompts as the model reads them: an env's prompt, and a multi-turn env's replies, as token ids.

A :class:`PromptFormat` is built once per run from the tokenizer and ``model.chat``
(:class:`~rewardgym.core.config.ChatSection`) and carried by the rollout collector
(``collector.prompts``; ``StepContext.prompts`` in a strategy). Every place that turns an env's
text into ids for the engine goes through it: rollouts and their multi-turn replies, thinking
traces and the answers forced from them, SFT and preference rows, evaluation.

**With a chat template** (``template: auto`` and a tokenizer that has one, or a Jinja template
in ``template``):

- a prompt is the conversation ``[system?, user(prompt)]`` rendered with
  ``tokenizer.apply_chat_template(..., add_generation_prompt=True, tokenize=False,
  **template_kwargs)``, then ``think_open``, encoded without adding special tokens: the template
  writes BOS where the model wants it, and the control tokens it spells (``<|im_start|>``) are
  encoded as the tokenizer's special tokens, as ``tokenizer(text)`` does (so are any spelled in
  the env's own text);
- a multi-turn env's reply is a new turn, spoken by ``env.reply_role`` ("user", or "tool" when
  the template has a tool role; see :meth:`PromptFormat.reply_role`). Its ids are exactly what
  the template writes between the end of the model's turn and the next generation prompt (then
  ``think_open`` again): the conversation is rendered with the model's turn as a placeholder,
  without the reply (no generation prompt) and with it (generation prompt), and the reply's
  text is what follows the placeholder. The model's turn usually ends with the end-of-turn token
  it sampled (``<|im_end|>``, its eos): that token is not added a second time; a turn cut at
  ``max_new_tokens`` or a stop string gets it from the template. Replies are rendered after the
  env's first prompt (the turns in between do not change them in the templates this supports);
  the placeholder's text must follow exactly the generation prompt the model was given, and
  adding the reply must leave the text before it as it was: a template that renders earlier
  turns differently (one that drops the thinking of earlier assistant turns, or moves the
  system message) cannot be continued token by token, and is refused with a
  :class:`~rewardgym.core.errors.ConfigError`.

**Without one** (``template: none``, or ``auto`` and a tokenizer without a chat template): BOS
then the raw text, and replies wrapped in ``rollout.turn_separator``: the behaviour before chat
templates. ``system_prompt``, ``think_open`` and ``template_kwargs`` only mean something to a
template, so setting them without one is a :class:`~rewardgym.core.errors.ConfigError`.

``think_end`` / ``answer_cue``, with or without a template, replace the env's answer-forcing
strings (:meth:`PromptFormat.forcing`). Problems with the template show when the runner builds
the format and renders one real prompt of the env (:meth:`PromptFormat.check`), before any step.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

from rewardgym.core.config.schema import ChatSection
from rewardgym.core.errors import ConfigError, EnvError
from rewardgym.core.forcing import AnswerForcing, forcing_of

__all__ = ["REPLY_ROLES", "PromptFormat", "encode_prompt", "encode_text"]

REPLY_ROLES = ("user", "tool")
# Stands for the model's turn while a reply is rendered (private-use characters: no template
# rewrites them, and no env text contains them).
PLACEHOLDER = "\ue000model-turn\ue000"
# A template has a tool role when it names one ('tool' or "tool", as Qwen2.5's and Llama 3.1's
# do); a template that never does would print "tool" as a header the model has not seen.
TOOL_ROLE = re.compile(r"""(['"])tool\1""")
# apply_chat_template's own arguments: template_kwargs must not collide with them.
RESERVED_KWARGS = frozenset(
    {
        "conversation", "messages", "chat_template", "add_generation_prompt", "tokenize",
        "continue_final_message", "sanitize_control_tokens", "padding", "truncation",
        "max_length", "return_tensors", "return_dict", "return_assistant_tokens_mask",
        "tokenizer_kwargs",
    }
)  # fmt: skip
TEMPLATE_ONLY = ("system_prompt", "think_open", "template_kwargs")


def encode_text(tokenizer: Any, text: str) -> list[int]:
    """``text`` as token ids, without special tokens."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def encode_prompt(tokenizer: Any, text: str) -> list[int]:
    """A prompt without a chat template: the tokenizer's BOS token (when it has one), then the
    text."""
    bos = getattr(tokenizer, "bos_token_id", None)
    return ([bos] if bos is not None else []) + encode_text(tokenizer, text)


class PromptFormat:
    """How env text becomes the model's token ids in a run (see the module docs).

    ``tokenizer``: the policy's tokenizer; ``chat``: the ``model.chat`` section (default: a
    template when the tokenizer has one); ``turn_separator``: what wraps a multi-turn reply
    without a template (``rollout.turn_separator``; a template writes its own turns)."""

    def __init__(
        self, tokenizer: Any, chat: ChatSection | None = None, *, turn_separator: str = "\n"
    ) -> None:
        self.tokenizer = tokenizer
        self.chat = chat if chat is not None else ChatSection()
        self.turn_separator = turn_separator
        self.template: str | None = _template_source(tokenizer, self.chat)
        _check_keys(self.chat, self.template is not None, tokenizer)
        self.tool_role = self.template is not None and bool(TOOL_ROLE.search(self.template))

    @property
    def templated(self) -> bool:
        """Whether prompts go through a chat template (else BOS + raw text)."""
        return self.template is not None

    # -- prompts -------------------------------------------------------------------------------
    def prompt_text(self, prompt: str) -> str:
        """The rendered prompt: the conversation, the generation prompt and ``think_open``
        (with a template only)."""
        self._require_template("prompt_text")
        return self._render(self._conversation(prompt), generation_prompt=True) + (
            self.chat.think_open
        )

    def prompt_ids(self, prompt: str) -> list[int]:
        """An env prompt as the model's input ids: the rendered prompt, or BOS + the text."""
        if not self.templated:
            return encode_prompt(self.tokenizer, prompt)
        return self._encode(self.prompt_text(prompt))

    # -- multi-turn replies --------------------------------------------------------------------
    def reply_role(self, env: Any) -> str:
        """The role ``env``'s replies are rendered with: its ``reply_role``, except that
        "tool" becomes "user" when the template has no tool role (it would render "tool" as
        a header the model has never seen, or fail)."""
        base = getattr(env, "unwrapped", env)
        role = getattr(base, "reply_role", "user")
        if role not in REPLY_ROLES:
            raise EnvError(
                f"{type(base).__name__}.reply_role must be one of {REPLY_ROLES}, got {role!r}."
            )
        return self._role(role)

    def _role(self, role: str) -> str:
        if role not in REPLY_ROLES:
            raise ValueError(f"A reply's role must be one of {REPLY_ROLES}, got {role!r}.")
        return role if role == "user" or self.tool_role else "user"

    def reply_ids(
        self, prompt: str, reply: str, model_ids: Sequence[int] = (), role: str = "user"
    ) -> list[int]:
        """The ids appended to a row after the model's turn ``model_ids`` (sampled after
        ``prompt``) when the env replies ``reply``: with a template, the end of the model's
        turn (unless ``model_ids`` already end with its end-of-turn token), the reply's turn
        as ``role`` and the next generation prompt (and ``think_open``); without, the reply
        wrapped in the turn separator. A "tool" role becomes "user" where the template has
        none (:meth:`reply_role`)."""
        if not self.templated:
            return encode_text(self.tokenizer, f"{self.turn_separator}{reply}{self.turn_separator}")
        close, turn = self._reply_text(prompt, reply, self._role(role))
        ids = self._encode(close + turn + self.chat.think_open)
        end = self._encode(close)[:1]
        if end and list(model_ids[-1:]) == end and ids[:1] == end:
            ids = ids[1:]  # the model sampled the end-of-turn token itself
        return ids

    def _reply_text(self, prompt: str, reply: str, role: str) -> tuple[str, str]:
        """(the text that closes the model's turn, the reply's turn + generation prompt)."""
        model_turn = {"role": "assistant", "content": self.chat.think_open + PLACEHOLDER}
        turn = [*self._conversation(prompt), model_turn]
        before = self._render(turn, generation_prompt=False)
        after = self._render([*turn, {"role": role, "content": reply}], generation_prompt=True)
        if before.count(PLACEHOLDER) != 1:
            raise ConfigError(
                f"{self._name()} does not write an assistant turn's content exactly once (found "
                f"{before.count(PLACEHOLDER)} times), so the replies of a multi-turn env cannot "
                f"be appended to the model's turn. {_FIX}"
            )
        start = before.index(PLACEHOLDER)
        prompt_text = self.prompt_text(prompt)
        if not prompt_text.startswith(before[:start]):
            raise ConfigError(
                f"{self._name()} renders the model's turn after other text than the generation "
                f"prompt the model was given: the prompt ends {prompt_text[-40:]!r}, the "
                f"template renders the turn after {before[:start][-40:]!r}. Replies of a "
                f"multi-turn env cannot continue the model's tokens. {_FIX}"
            )
        if not after.startswith(before):
            at = len(os.path.commonprefix([before, after]))
            raise ConfigError(
                f"{self._name()} renders the earlier turns differently once the env's reply "
                f"is added (they differ from {before[at : at + 40]!r} vs {after[at : at + 40]!r}"
                "; templates that drop earlier thinking or move the system message do this), "
                f"so a multi-turn conversation cannot be continued token by token. {_FIX}"
            )
        return before[start + len(PLACEHOLDER) :], after[len(before) :]

    # -- answer forcing --------------------------------------------------------------------------
    def forcing(self, env: Any) -> AnswerForcing:
        """``env``'s answer-forcing protocol with ``model.chat.think_end`` / ``answer_cue``
        (when set) in place of its strings."""
        return forcing_of(env, think_end=self.chat.think_end, answer_cue=self.chat.answer_cue)

    # -- checks --------------------------------------------------------------------------------
    def check(self, prompt: str, *, reply: str | None = None, role: str = "user") -> None:
        """Render ``prompt`` (and, when given, a reply ``reply`` as ``role``) as a run would:
        a :class:`ConfigError` saying what to change when the template fails on it, or writes
        a prompt without the prompt's text. Nothing to check without a template."""
        if not self.templated:
            return
        text = self.prompt_text(prompt)
        if prompt.strip() not in text:
            raise ConfigError(
                f"{self._name()} rendered a prompt of the env without the prompt's text (it "
                f"wrote {text[:80]!r}); is it a chat template (it must loop over `messages`)? "
                f"{_FIX}"
            )
        think_open = self.chat.think_open
        rendered = self._render(self._conversation(prompt), generation_prompt=True)
        if think_open.strip() and rendered.rstrip().endswith(think_open.strip()):
            raise ConfigError(
                f"model.chat.think_open is {think_open!r}, but {self._name()} already ends its "
                f"generation prompt with it, so prompts would open the thinking twice. Leave "
                "model.chat.think_open empty for this model."
            )
        if reply is not None:
            self.reply_ids(prompt, reply, (), role)

    # -- internals -----------------------------------------------------------------------------
    def _conversation(self, prompt: str) -> list[dict[str, str]]:
        system = self.chat.system_prompt
        messages = [] if system is None else [{"role": "system", "content": system}]
        return [*messages, {"role": "user", "content": prompt}]

    def _render(self, messages: list[dict[str, str]], *, generation_prompt: bool) -> str:
        try:
            return self.tokenizer.apply_chat_template(
                messages,
                chat_template=self.template,
                add_generation_prompt=generation_prompt,
                tokenize=False,
                **self.chat.template_kwargs,
            )
        except Exception as exc:  # Jinja syntax, raise_exception() in the template, bad kwargs
            raise _render_error(self, messages, exc) from exc

    def _encode(self, text: str) -> list[int]:
        """Rendered text as ids: no special tokens added (the template wrote them), and the
        control tokens it spells encoded as such even where the tokenizer splits them."""
        encoded = self.tokenizer(text, add_special_tokens=False, split_special_tokens=False)
        return list(encoded["input_ids"])

    def _name(self) -> str:
        if self.chat.template == "auto":
            return "The tokenizer's chat template (model.chat.template: auto)"
        return "The chat template in model.chat.template"

    def _require_template(self, what: str) -> None:
        if not self.templated:
            raise ValueError(f"PromptFormat.{what} needs a chat template; this format has none.")

    def __repr__(self) -> str:
        kind = "template" if self.templated else "plain"
        return f"PromptFormat({kind}, {self.chat!r})"


_FIX = (
    "Set model.chat.template to a template that works (a Jinja string), or to none to feed "
    "BOS + raw text."
)


def _template_source(tokenizer: Any, chat: ChatSection) -> str | None:
    """The Jinja source prompts are rendered with, or None for BOS + raw text."""
    if chat.template == "none":
        return None
    if chat.template != "auto":
        return chat.template
    if not getattr(tokenizer, "chat_template", None):
        return None
    try:
        return tokenizer.get_chat_template()
    except ValueError as exc:  # several named templates and no "default"
        raise ConfigError(
            f"model.chat.template is 'auto', but the tokenizer's chat template cannot be chosen: "
            f"{exc} Set model.chat.template to the Jinja text of the one to use."
        ) from exc


def _check_keys(chat: ChatSection, templated: bool, tokenizer: Any) -> None:
    """The keys that mean something only to a template are an error without one; template
    kwargs must not collide with apply_chat_template's own arguments."""
    reserved = sorted(RESERVED_KWARGS & set(chat.template_kwargs))
    if reserved:
        raise ConfigError(
            f"model.chat.template_kwargs sets {', '.join(reserved)}, which the runner passes to "
            "apply_chat_template itself. Remove them from model.chat.template_kwargs."
        )
    unused = [key for key in TEMPLATE_ONLY if getattr(chat, key)]
    if templated or not unused:
        return
    keys = ", ".join(f"model.chat.{key}" for key in unused)
    if chat.template == "none":
        why = "model.chat.template is 'none'"
    else:
        name = getattr(tokenizer, "name_or_path", "")
        of = f" of {name!r}" if name else ""
        why = f"model.chat.template is 'auto' and the tokenizer{of} has no chat template"
    verb = "applies" if len(unused) == 1 else "apply"
    raise ConfigError(
        f"{keys} {verb} only to prompts rendered through a chat template, but {why}, so "
        f"{'it' if len(unused) == 1 else 'they'} would be ignored. Set model.chat.template (to "
        "'auto' with a model whose tokenizer has a chat template, or to a Jinja template), or "
        f"remove {keys}."
    )


def _render_error(fmt: PromptFormat, messages: list[dict[str, str]], exc: Exception) -> Exception:
    """A ConfigError for a template that failed to render ``messages``."""
    roles = ", ".join(m["role"] for m in messages)
    try:
        from jinja2 import TemplateSyntaxError
    except ImportError:  # pragma: no cover - transformers needs jinja2 for chat templates
        TemplateSyntaxError = ()  # noqa: N806
    if isinstance(exc, TemplateSyntaxError):
        return ConfigError(
            f"{fmt._name()} is not valid Jinja: {exc.message} (line {exc.lineno}). Fix the "
            "template, or set model.chat.template to auto (the tokenizer's own) or none."
        )
    hint = ""
    if fmt.chat.system_prompt is not None:
        hint = " If the template takes no system message, remove model.chat.system_prompt."
    if "tool" in roles.split(", "):
        hint += " (The env's replies were rendered as tool turns: env.reply_role.)"
    return ConfigError(
        f"{fmt._name()} failed to render a conversation of roles [{roles}]: "
        f"{type(exc).__name__}: {exc}.{hint} {_FIX}"
    )
