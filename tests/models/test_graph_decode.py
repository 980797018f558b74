"""flag_gems.GraphDecoder: greedy decode over a static cache, one captured CUDA graph per step.

Everywhere: its tokens are ``model.generate(do_sample=False)``'s for tiny Llama and Qwen2
models (random weights), natively, under enable() and patched, with left padding and EOS; a
decoder is reused across calls. On the CPU every step runs eagerly (the same step the graph
captures). On a GPU: replaying the graph gives the eager step's tokens and logits, and the
operators a decode step runs under enable() can be captured and replayed."""

import contextlib
import copy
import inspect

import pytest
import torch

transformers = pytest.importorskip("transformers")

import flag_gems  # noqa: E402
from flag_gems.patching import graph_decode  # noqa: E402

from conftest import DEVICE, ON_GPU  # noqa: E402
from test_hf_llama import routed  # noqa: E402
from test_patch_model import COMMON, VOCAB, build, token_ids  # noqa: E402

needs_cuda = pytest.mark.skipif(not (ON_GPU and torch.cuda.is_available()), reason="CUDA graphs need a CUDA GPU")
NEW = 5
PAD_ID, EOS_ID = COMMON["pad_token_id"], COMMON["eos_token_id"]
MODES = ["native", "enabled", "patched and enabled"]


def _setup(family, mode, dtype=torch.float32, log=None):
    """(model, the context its decode runs in): a patched model in the patched mode; ``log``:
    the record log's path under enable()."""
    model = build(family, dtype)
    if mode == "patched and enabled":
        model = flag_gems.patch_model(copy.deepcopy(model))
    if mode == "native":
        return model, contextlib.nullcontext()
    return model, flag_gems.use_gems(**({} if log is None else dict(record=True, path=str(log))))


def assert_greedy_agrees(ours, native, model, prompt):
    """The same tokens; on a GPU (fp32 in another order) a row may part only at a near tie of
    native's logits, judged by running the native model on native's own sequence."""
    if not ON_GPU:
        assert ours.tolist() == native.tolist()
        return
    with torch.no_grad():
        logits = model(native).logits
    for row in range(native.shape[0]):
        for step in range(prompt, min(ours.shape[1], native.shape[1])):
            mine, theirs = ours[row, step].item(), native[row, step].item()
            if mine != theirs:
                step_logits = logits[row, step - 1]
                gap = (step_logits[theirs] - step_logits[mine]).item()
                assert gap <= 1e-4 * step_logits.abs().max().item(), f"row {row} step {step}: {mine} vs {theirs}"
                break
        else:
            continue
        return
    assert ours.shape == native.shape


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_matches_generate(family, mode, tmp_path):
    log = tmp_path / "record.log"
    model, context = _setup(family, mode, log=log)
    ids = token_ids(tokens=6)
    native = build(family, torch.float32).generate(ids, max_new_tokens=NEW, do_sample=False)
    with context:
        ours = flag_gems.GraphDecoder(model, ids.shape[0], ids.shape[1] + NEW).generate(ids, NEW)
    assert_greedy_agrees(ours, native, model, ids.shape[1])
    if mode != "native":  # the step's own argmax and mask, the model's embedding: ours
        assert {"aten::argmax", "aten::where.self", "aten::embedding"} <= routed(log)


def test_left_padding():
    model = build("llama", torch.float32)
    ids = token_ids(tokens=7)
    mask = torch.ones_like(ids)
    ids[0, :3], mask[0, :3] = PAD_ID, 0
    native = model.generate(ids, attention_mask=mask, max_new_tokens=NEW, do_sample=False)
    ours = flag_gems.generate_with_graphs(model, ids, NEW, attention_mask=mask)
    assert_greedy_agrees(ours, native, model, ids.shape[1])


def test_end_of_sequence_as_generate():
    sequence = torch.tensor([[5, 6, 7, EOS_ID, 8, 9], [5, 6, 9, 9, EOS_ID, 7]])
    ended = graph_decode._ended(sequence, 2, (EOS_ID,), PAD_ID)
    assert ended.tolist() == [[5, 6, 7, EOS_ID, PAD_ID], [5, 6, 9, 9, EOS_ID]]  # cut where both ended
    running = graph_decode._ended(sequence[:, :4], 2, (EOS_ID,), None)  # one row still going; pad = EOS
    assert running.tolist() == [[5, 6, 7, EOS_ID], [5, 6, 9, 9]]
    assert graph_decode._ended(sequence, 2, (), PAD_ID) is sequence


def test_eos_is_the_models():
    model = build("llama", torch.float32)
    ids = token_ids(tokens=6)
    decoder = flag_gems.GraphDecoder(model, ids.shape[0], 32)
    free = decoder.generate(ids, 12, eos_token_id=[])  # every step's argmax, nothing ended
    token = free[0, 8].item()  # say this row's third new token were the EOS
    native = model.generate(ids, max_new_tokens=12, do_sample=False, eos_token_id=token, pad_token_id=PAD_ID)
    ours = decoder.generate(ids, 12, eos_token_id=token, pad_token_id=PAD_ID)
    assert_greedy_agrees(ours, native, model, ids.shape[1])
    assert ours[0, 9:].eq(PAD_ID).all()


def test_a_decoder_serves_many_calls():
    model = build("qwen2", torch.float32)
    decoder = flag_gems.GraphDecoder(model, 2, 24, warmup_steps=1)
    for tokens, new in ((6, NEW), (3, 9), (6, NEW)):
        ids = token_ids(tokens=tokens)
        native = model.generate(ids, max_new_tokens=new, do_sample=False)
        assert_greedy_agrees(decoder.generate(ids, new), native, model, tokens)
    graph = decoder._graph
    decoder.generate(ids, NEW)
    assert decoder._graph is graph and (graph is not None) == ON_GPU  # captured once, on CUDA only
    assert decoder.generate(ids, 0).tolist() == ids.tolist()


def test_refusals():
    model = build("llama", torch.float32)
    decoder = flag_gems.GraphDecoder(model, 2, 10)
    with pytest.raises(ValueError, match="batch of 1"):
        decoder.generate(token_ids(batch=1, tokens=4), 2)
    with pytest.raises(ValueError, match="max_length"):
        decoder.generate(token_ids(tokens=6), 6)
    if not ON_GPU:
        with pytest.raises(ValueError, match="CUDA"):
            flag_gems.GraphDecoder(model, 2, 10, graphs=True)
    model.config._attn_implementation = "flash_attention_2"
    with pytest.raises(ValueError, match="sdpa or eager"):
        flag_gems.GraphDecoder(model, 2, 10)


def test_eager_attention():
    model = build("llama", torch.float32)
    model.config._attn_implementation = "eager"
    ids = token_ids(tokens=6)
    native = model.generate(ids, max_new_tokens=NEW, do_sample=False)
    assert_greedy_agrees(flag_gems.generate_with_graphs(model, ids, NEW), native, model, ids.shape[1])


def test_cache_argument_of_either_transformers():
    # transformers 5.2x names the forward's cache ``cache``; earlier 5.x ``past_key_values``
    def new(self, input_ids=None, attention_mask=None, position_ids=None, cache=None, **kwargs):
        pass

    def old(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None, **kwargs):
        pass

    assert graph_decode._cache_argument(type("New", (), {"forward": new})()) == "cache"
    assert graph_decode._cache_argument(type("Old", (), {"forward": old})()) == "past_key_values"
    model = flag_gems.patch_model(build("llama"))  # its forward on the instance takes **kwargs
    assert graph_decode._cache_argument(model) in inspect.signature(type(model).forward).parameters


def test_top_level_names():
    assert flag_gems.GraphDecoder is graph_decode.GraphDecoder
    assert flag_gems.generate_with_graphs is graph_decode.generate_with_graphs
    assert {"GraphDecoder", "generate_with_graphs"} <= set(flag_gems.__all__)


# ---- on a CUDA GPU: capture and replay


@needs_cuda
@pytest.mark.parametrize("mode", MODES)
def test_replay_gives_the_eager_steps(mode):
    model, context = _setup("llama", mode, torch.bfloat16)
    ids = token_ids(tokens=16)
    with context:
        replayed = flag_gems.GraphDecoder(model, ids.shape[0], 64)
        eager = flag_gems.GraphDecoder(model, ids.shape[0], 64, graphs=False)
        for decoder in (eager, replayed):
            decoder.generate(ids, 24, eos_token_id=[])
    assert replayed._graph is not None and eager._graph is None
    assert torch.equal(replayed._sequence, eager._sequence)
    # the last step's logits: the same kernels (cuBLAS's choice may differ on the capture's stream)
    scale = eager._logits.abs().max().item()
    torch.testing.assert_close(replayed._logits, eager._logits, rtol=0, atol=1e-2 * scale)


@needs_cuda
def test_the_graph_is_what_was_active_at_capture():
    model, context = _setup("llama", "enabled", torch.float32)
    ids = token_ids(tokens=8)
    native = model.generate(ids, max_new_tokens=12, do_sample=False)
    with context:
        decoder = flag_gems.GraphDecoder(model, ids.shape[0], 32)
        decoder.generate(ids, 12)
    assert_greedy_agrees(decoder.generate(ids, 12), native, model, ids.shape[1])  # replayed outside use_gems


@needs_cuda
def test_the_ops_of_a_decode_step_capture_and_replay():
    """Our kernels a decode step hits, captured under enable() after a warm-up, then replayed
    on new inputs: each result as the eager call's. A host read or synchronization inside any
    of them makes the capture raise."""
    torch.manual_seed(0)
    hidden, vocab, heads = 256, VOCAB, 4
    static = dict(x=torch.randn(2, 1, hidden, device=DEVICE, dtype=torch.bfloat16),
                  ids=torch.randint(0, vocab, (2, 1), device=DEVICE),
                  position=torch.tensor([5], device=DEVICE))
    picked = torch.tensor([0, 3], device=DEVICE)  # made before the capture: a host copy cannot be captured
    weights = dict(w=torch.randn(hidden, hidden, device=DEVICE, dtype=torch.bfloat16) / 16,
                   norm=torch.rand(hidden, device=DEVICE, dtype=torch.bfloat16) + 0.5,
                   table=torch.randn(vocab, hidden, device=DEVICE, dtype=torch.bfloat16),
                   cos=torch.randn(1, 1, 64, device=DEVICE), sin=torch.randn(1, 1, 64, device=DEVICE))

    def step(x, ids, position):
        h = x + torch.nn.functional.embedding(ids, weights["table"])
        h = flag_gems.rms_norm(h, (hidden,), weights["norm"], 1e-6)
        h = torch.nn.functional.silu(h @ weights["w"]) * h
        q = h.view(2, 1, heads, 64).transpose(1, 2)
        q, _ = flag_gems.hf_apply_rotary_pos_emb(q, q, weights["cos"].to(q.dtype), weights["sin"].to(q.dtype))
        columns = torch.arange(16, device=DEVICE)
        mask = torch.where(columns <= position, torch.zeros((), device=DEVICE), torch.full((), -1e4, device=DEVICE))
        scores = torch.softmax(q.float().sum(-1, keepdim=True) + mask, dim=-1)
        both = torch.cat([scores, scores[:, :, :, :1]], dim=-1)
        rows = both.reshape(-1, 17)[picked]
        logits = (h.float().mean(-1, keepdim=True) * rows.sum(-1)[:2, None, None]).amax(-1)
        return torch.argmax(logits.flatten()), rows, h

    with flag_gems.use_gems():
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                step(**static)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outputs = step(**static)
        static["x"].copy_(torch.randn_like(static["x"]))
        static["ids"].copy_(torch.randint(0, vocab, (2, 1), device=DEVICE))
        static["position"].fill_(9)
        graph.replay()
        expected = step(**static)
    for replayed, eager in zip(outputs, expected):  # the same kernels (cuBLAS may pick another on the capture's stream)
        torch.testing.assert_close(replayed, eager)
