"""A tiny SmolLM3 with random weights, built locally: the real architecture, tokenizer conventions and
chat template, small enough to serve on a CPU in milliseconds per token (../shared/smollm3/SERVING.md).

Runs inside the server venv (torch, transformers, tokenizers), never in the test suite's own venv:

    python tests/harness/smollm3_model.py build OUT_DIR
        writes a model folder transformers can load: config.json, model.safetensors, tokenizer files
        with SmolLM3's chat template attached unchanged;
    python tests/harness/smollm3_model.py count MODEL_DIR < cases.json
        for each case {"messages": [...], "tools": [...] or null, "enable_thinking": bool}, the number of prompt tokens the
        template renders with the generation prompt, as a server would feed the model (JSON on stdout).

The recipe is everything in this file plus the template and special-token list it reads, so
`recipe_files()` is what a cache of built models is keyed by.

What is kept from the real 3B (SOURCES.md §2): the SmolLM3 architecture with its no-RoPE layer
pattern (every 4th layer runs without rotary embedding, `no_rope_layer_interval=4`), grouped-query
attention (heads / key-value heads = 2), rope_theta 5e6, rms_norm_eps 1e-6, tied embeddings, and the
special tokens the template writes (`<|im_start|>`, `<|im_end|>` as eos, `<think>`, `<tool_call>` …).
What is scaled down: hidden 64, 4 layers, 4 heads, vocab 512 (a byte-level BPE trained here on text
written in this file and on the template itself).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SHARED_SMOLLM3 = (Path(__file__).resolve().parents[2] / ".." / "shared" / "smollm3").resolve()
TEMPLATE = SHARED_SMOLLM3 / "chat_template.jinja"
SPECIAL_TOKENS = SHARED_SMOLLM3 / "special_tokens.json"

VOCAB_SIZE = 512
SEED = 0
# The template's special tokens, taken by name from special_tokens.json (its ids belong to the 3B's
# 128k vocabulary and cannot be kept in a 512-token one; the strings are what the template writes).
SPECIAL_NAMES = ("bos", "pad", "im_start", "im_end", "think", "think_end", "tool_call", "tool_call_end")
# Training text for the tokenizer besides the template: short chat-like lines in the languages the
# tests send, so a prompt tokenizes into a few hundred tokens rather than one per byte.
CORPUS = [
    "Hello! How are you today? Say hello in one word.",
    "What is the weather in Paris? It is sunny and warm.",
    "You are a helpful assistant. Answer briefly.",
    '{"name": "weather", "arguments": {"city": "Paris"}}',
    "The user wants the weather. I should call the tool.",
    "Knowledge Cutoff Date: June 2025\nToday Date: 01 January 2026\nReasoning Mode: /think\n",
]


def recipe_files() -> list[Path]:
    """The files whose bytes decide what `build` writes (the cache key)."""
    return [Path(__file__).resolve(), TEMPLATE, SPECIAL_TOKENS]


def special_tokens() -> dict[str, str]:
    tokens = json.loads(SPECIAL_TOKENS.read_text())["tokens"]
    return {name: tokens[name].get("content") or tokens[name]["config_pad_content"] for name in SPECIAL_NAMES}


def build_tokenizer(template: str):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special = special_tokens()
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=list(special.values()),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([template, *CORPUS], trainer=trainer)
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=special["bos"], eos_token=special["im_end"],
                                      pad_token=special["pad"],
                                      additional_special_tokens=[special[n] for n in SPECIAL_NAMES[2:] if n != "im_end"])
    wrapped.chat_template = template  # unchanged, byte for byte
    return wrapped


def build_model(tokenizer):
    import torch
    from transformers import GenerationConfig, SmolLM3Config, SmolLM3ForCausalLM

    torch.manual_seed(SEED)
    config = SmolLM3Config(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
        no_rope_layer_interval=4, rope_theta=5_000_000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    model = SmolLM3ForCausalLM(config).eval()
    # Greedy by default: the same prompt gives the same tokens on every run.
    model.generation_config = GenerationConfig(bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id,
                                               pad_token_id=config.pad_token_id, do_sample=False)
    return model


def build(out: Path) -> None:
    template = TEMPLATE.read_text()
    tokenizer = build_tokenizer(template)
    model = build_model(tokenizer)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out)
    model.save_pretrained(out)
    # The tokenizer writes the template beside its config; check it survived unchanged.
    assert tokenizer.__class__.from_pretrained(out).chat_template == template, "chat template changed on save"


def count(model_dir: Path, cases: list[dict]) -> list[int]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return [len(tokenizer.apply_chat_template(c["messages"], tools=c.get("tools"), add_generation_prompt=True,
                                              tokenize=True, enable_thinking=c["enable_thinking"], return_dict=False))
            for c in cases]


if __name__ == "__main__":
    command, target = sys.argv[1], Path(sys.argv[2])
    if command == "build":
        build(target)
    elif command == "count":
        print(json.dumps(count(target, json.load(sys.stdin))))
    else:
        sys.exit(f"unknown command {command!r}: build OUT_DIR | count MODEL_DIR < cases.json")
