"""The tiny char-level model and tokenizer, loading, saving and the model params configs."""

from __future__ import annotations

import re

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from rewardgym.core.config import build_dataclass  # noqa: E402
from rewardgym.core.errors import ConfigError  # noqa: E402
from rewardgym.runner.model_config import DEFAULT_CHARSET  # noqa: E402
from rewardgym.runner.models import (  # noqa: E402
    PretrainedModelConfig,
    TinyModelConfig,
    build_tiny_model,
    char_tokenizer,
    load_model,
    model_params_class,
    save_model,
)

SMALL = TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, max_position_embeddings=64)
TEXTS = [
    "12+34=46",
    "  two  spaces, then a tab:\tand\nnew\n\nlines\n",
    "punctuation !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ and 0123456789",
    " . , 's n't ",  # must not be 'cleaned up'
    "<eos> and <pad> written in text are plain characters",
]


@pytest.fixture(scope="module")
def tokenizer():
    return char_tokenizer(DEFAULT_CHARSET)


def _ids(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("text", TEXTS)
def test_char_tokenizer_round_trips_text_exactly(tokenizer, text):
    ids = _ids(tokenizer, text)
    assert len(ids) == len(text)  # one id per character
    assert tokenizer.decode(ids) == text
    assert tokenizer.decode(ids, skip_special_tokens=True) == text


def test_char_tokenizer_specials_and_padding(tokenizer):
    assert (tokenizer.pad_token_id, tokenizer.bos_token_id) == (0, 1)
    assert (tokenizer.eos_token_id, tokenizer.unk_token_id) == (2, 3)
    assert len(tokenizer) == 4 + len(DEFAULT_CHARSET) == 4 + 98
    assert tokenizer.padding_side == "left"
    assert tokenizer("ab")["input_ids"] == _ids(tokenizer, "ab")  # no bos/eos added
    assert tokenizer.decode([1, *_ids(tokenizer, "ab"), 2, 0], skip_special_tokens=True) == "ab"
    assert _ids(tokenizer, "aéb")[1] == tokenizer.unk_token_id
    batch = tokenizer(["a", "abc"], padding=True, add_special_tokens=False)
    assert batch["input_ids"][0][:2] == [0, 0] and batch["attention_mask"][0] == [0, 0, 1]


def test_char_tokenizer_over_a_custom_charset():
    tokenizer = char_tokenizer("0123456789+=\n0")  # a duplicate is ignored
    assert len(tokenizer) == 4 + 13
    assert tokenizer.decode(_ids(tokenizer, "12+3=15\n")) == "12+3=15\n"


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_tiny_model_is_deterministic_per_seed_and_leaves_global_rng_alone():
    before = torch.get_rng_state()
    a, tokenizer = build_tiny_model(SMALL)
    b, _ = build_tiny_model(SMALL)
    c, _ = build_tiny_model(TinyModelConfig(**{**SMALL.__dict__, "seed": 1}))
    assert torch.equal(torch.get_rng_state(), before)
    sa, sb, sc = _state(a), _state(b), _state(c)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert a.config.vocab_size == len(tokenizer) and a.config.tie_word_embeddings
    assert a.model.embed_tokens.weight.data_ptr() == a.lm_head.weight.data_ptr()
    assert a.config.intermediate_size == 4 * 32  # intermediate_size None: 4 * hidden_size
    assert next(a.parameters()).dtype == torch.float32


def test_tiny_model_config_rejects_bad_shapes():
    with pytest.raises(
        ConfigError,
        match=re.escape("hidden_size (30) must be num_heads (4) times an even head size"),
    ):
        TinyModelConfig(hidden_size=30, num_heads=4)
    with pytest.raises(
        ConfigError, match=re.escape("hidden_size (12) must be num_heads (4) times an even")
    ):
        TinyModelConfig(hidden_size=12, num_heads=4)  # head size 3 is odd
    with pytest.raises(
        ConfigError, match=re.escape("model.params.num_layers must be >= 1, got 0.")
    ):
        TinyModelConfig(num_layers=0)
    with pytest.raises(
        ConfigError, match=re.escape("model.params.charset must hold at least one character")
    ):
        TinyModelConfig(charset="")


def test_model_params_class_validates_params_by_name():
    assert model_params_class("tiny") is TinyModelConfig
    assert model_params_class("Qwen/Qwen2.5-0.5B") is PretrainedModelConfig
    assert (
        build_dataclass(TinyModelConfig, {"hidden_size": 64}, component="model 'tiny'").hidden_size
        == 64
    )
    with pytest.raises(ConfigError, match=re.escape("Did you mean 'revision'?")):
        build_dataclass(PretrainedModelConfig, {"revison": "main"}, component="model 'x/y'")


def _logits(model, tokenizer, text="12+34=46\n"):
    ids = torch.tensor([[tokenizer.bos_token_id, *_ids(tokenizer, text)]])
    with torch.no_grad():
        return model(ids).logits


def test_save_and_load_round_trip(tmp_path):
    model, tokenizer = load_model("tiny", {"hidden_size": 32, "num_layers": 1, "num_heads": 2})
    save_model(model, tokenizer, tmp_path / "model")
    loaded, loaded_tokenizer = load_model(
        str(tmp_path / "model"), PretrainedModelConfig(local_files_only=True)
    )
    assert torch.allclose(_logits(model, tokenizer), _logits(loaded, loaded_tokenizer), atol=1e-6)
    for text in TEXTS:
        ids = _ids(loaded_tokenizer, text)
        assert ids == _ids(tokenizer, text) and loaded_tokenizer.decode(ids) == text
    assert loaded_tokenizer.pad_token_id == 0 and loaded_tokenizer.padding_side == "left"
    # Plain transformers reads the directory back too: the char tokenizer, not a rebuilt BPE.
    auto = AutoTokenizer.from_pretrained(tmp_path / "model")
    assert auto.decode(_ids(auto, TEXTS[1])) == TEXTS[1] and len(auto) == len(tokenizer)
    auto_model = AutoModelForCausalLM.from_pretrained(tmp_path / "model")
    assert torch.allclose(_logits(model, tokenizer), _logits(auto_model, auto), atol=1e-6)


def test_load_model_dtype_and_params():
    model, _ = load_model("tiny", SMALL, dtype="bfloat16")
    assert next(model.parameters()).dtype == torch.bfloat16
    model, _ = load_model("tiny", SMALL, dtype="auto")
    assert next(model.parameters()).dtype == torch.float32
    with pytest.raises(
        ConfigError,
        match=re.escape("Unknown param 'hiden_size' for model 'tiny'. Did you mean 'hidden_size'?"),
    ):
        load_model("tiny", {"hiden_size": 8})
    with pytest.raises(
        ConfigError,
        match=re.escape("model.params for 'some/model' must be a PretrainedModelConfig"),
    ):
        load_model("some/model", SMALL)


def test_load_model_reports_a_missing_path(tmp_path):
    missing = str(tmp_path / "no" / "such" / "model")
    with pytest.raises(
        ConfigError,
        match=re.escape(f"model.name_or_path '{missing}' is neither an existing directory"),
    ):
        load_model(missing, {})
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(
        ConfigError, match=re.escape(f"Could not load model.name_or_path '{empty}' (a directory)")
    ):
        load_model(str(empty), {"local_files_only": True})


def test_load_model_gives_a_tokenizer_without_pad_its_eos(tmp_path):
    model, tokenizer = build_tiny_model(SMALL)
    tokenizer.pad_token = None
    save_model(model, tokenizer, tmp_path)
    _, loaded = load_model(str(tmp_path), {"local_files_only": True})
    assert loaded.pad_token == loaded.eos_token == "<eos>"


def test_attention_kernels_by_config_and_clear_errors(tmp_path):
    from rewardgym.testing.standin import save_standin

    path = save_standin(tmp_path / "m", hidden_size=32, num_layers=1)
    model, _ = load_model(str(path), {"attn_implementation": "eager"})
    assert model.config._attn_implementation == "eager"
    with pytest.raises(ConfigError, match="attn_implementation"):
        load_model(str(path), {"attn_implementation": "bogus"})
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="leave model.params.attn_implementation out"):
            load_model(str(path), {"attn_implementation": "flash_attention_2"})
