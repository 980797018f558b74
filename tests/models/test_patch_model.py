"""flag_gems.patch_model on tiny Hugging Face models of each supported family (random
weights): patched against unpatched for forward logits, greedy generation and a training
step (loss and every gradient), with and without enable(); state dicts unchanged; other
architectures and unpatched models untouched."""

import contextlib
import copy
import logging

import pytest
import torch

transformers = pytest.importorskip("transformers")

import flag_gems  # noqa: E402

from conftest import DEVICE, ON_GPU, pick  # noqa: E402
from test_hf_llama import REFERENCE, assert_matches, train_step  # noqa: E402

DTYPE = pick(torch.float32, torch.bfloat16)
HIDDEN, HEADS, KV_HEADS, HEAD_DIM, FFN, VOCAB = pick((64, 4, 2, 16, 128, 128), (256, 8, 4, 32, 688, 1024))
BATCH, TOKENS = 2, pick(8, 64)
COMMON = dict(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=FFN, num_hidden_layers=2,
              num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, max_position_embeddings=128,
              pad_token_id=0, bos_token_id=1, eos_token_id=2)
FAMILIES = {
    "llama": lambda: transformers.LlamaForCausalLM(transformers.LlamaConfig(**COMMON)),
    "mistral": lambda: transformers.MistralForCausalLM(transformers.MistralConfig(**COMMON)),
    "qwen2": lambda: transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**COMMON)),
    "qwen3": lambda: transformers.Qwen3ForCausalLM(transformers.Qwen3Config(**COMMON, head_dim=HEAD_DIM)),
    "gemma": lambda: transformers.GemmaForCausalLM(transformers.GemmaConfig(**COMMON, head_dim=HEAD_DIM)),
}


def build(family, dtype=DTYPE):
    torch.manual_seed(0)
    model = FAMILIES[family]().to(DEVICE, dtype).eval()
    with torch.no_grad():  # Gemma's norm weights start at 0 (a scale of 1): make them matter
        for name, parameter in model.named_parameters():
            if "norm" in name:
                parameter.add_(torch.rand_like(parameter) * 0.5)
    return model


def token_ids(batch=BATCH, tokens=TOKENS):
    torch.manual_seed(1)
    return torch.randint(3, VOCAB, (batch, tokens), device=DEVICE)


def patched_copy(model):
    return flag_gems.patch_model(copy.deepcopy(model))


@pytest.mark.parametrize("enabled", [False, True], ids=["patched", "patched and enabled"])
@pytest.mark.parametrize("family", FAMILIES)
def test_forward_logits(family, enabled, monkeypatch):
    model, ids = build(family), token_ids()
    reference = copy.deepcopy(model).to(REFERENCE)
    patched = patched_copy(model)
    rotary, calls = flag_gems.ops.hf_apply_rotary_pos_emb, []
    monkeypatch.setattr(flag_gems.ops, "hf_apply_rotary_pos_emb", lambda *a, **k: calls.append(1) or rotary(*a, **k))
    with torch.no_grad():
        native, exact = model(ids).logits, reference(ids).logits
        assert not calls  # the unpatched models keep the family's own rotary function
        with flag_gems.use_gems() if enabled else contextlib.nullcontext():
            ours = patched(ids).logits
    assert len(calls) == len(patched.model.layers)  # ours, once per attention module
    assert_matches(ours, native, exact, f"{family} logits")


@pytest.mark.parametrize("family", FAMILIES)
def test_greedy_generate(family):
    model = build(family, torch.float32)
    patched = patched_copy(model)
    ids = token_ids(tokens=6)
    native = model.generate(ids, max_new_tokens=4, do_sample=False)
    ours = patched.generate(ids, max_new_tokens=4, do_sample=False)
    assert ours.tolist() == native.tolist()


@pytest.mark.parametrize("family, enabled", [(family, False) for family in FAMILIES] + [("llama", True)])
def test_training_step(family, enabled):
    model, ids = build(family), token_ids()
    reference, patched = copy.deepcopy(model).to(REFERENCE), patched_copy(model)
    for m in (model, reference, patched):
        m.train()
    native_loss, native_grads = train_step(model, ids)
    exact_loss, exact_grads = train_step(reference, ids)
    with flag_gems.use_gems() if enabled else contextlib.nullcontext():
        ours_loss, ours_grads = train_step(patched, ids)
    assert_matches(ours_loss, native_loss, exact_loss, f"{family} loss")
    assert ours_grads.keys() == native_grads.keys()
    for name, grad in ours_grads.items():
        assert grad is not None, name
        assert_matches(grad, native_grads[name], exact_grads[name], f"{family}: gradient of {name}")


def test_training_returns_no_logits_and_eval_keeps_them():
    model, ids = build("llama"), token_ids()
    patched = patched_copy(model).train()
    assert patched(ids, labels=ids).logits is None  # the fused loss never makes them
    patched.eval()
    with torch.no_grad():
        out = patched(ids, labels=ids)
        assert out.logits is not None and out.loss is not None


def test_state_dict_is_unchanged():
    model = build("qwen3")
    patched = patched_copy(model)
    theirs, ours = model.state_dict(), patched.state_dict()
    assert list(theirs) == list(ours)
    assert all(torch.equal(theirs[k], ours[k]) for k in theirs)
    fresh = flag_gems.patch_model(build("qwen3"))
    fresh.load_state_dict(theirs)


def test_patching_twice_is_patching_once():
    model = build("llama")
    patched = flag_gems.patch_model(flag_gems.patch_model(copy.deepcopy(model)))
    ids = token_ids()
    with torch.no_grad():
        torch.testing.assert_close(patched(ids).logits, patched_copy(model)(ids).logits)


def test_other_architectures_are_left_alone(caplog):
    config = transformers.GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=1, n_head=2, n_positions=32)
    model = transformers.GPT2LMHeadModel(config)
    forwards = {name: vars(module).get("forward") for name, module in model.named_modules()}
    with caplog.at_level(logging.WARNING, logger="flag_gems"):
        assert flag_gems.patch_model(model) is model
    assert {name: vars(module).get("forward") for name, module in model.named_modules()} == forwards
    lines = [r for r in caplog.records if "patch_model" in r.getMessage()]
    assert len(lines) == 1 and "gpt2" in lines[0].getMessage()
