"""Hugging Face models built from configs (random weights, nothing downloaded), native
PyTorch and ``flag_gems.enable()`` in one process.

Per model, natively, under ``enable()`` and under ``enable()`` with ``patch_model``: prefill
latency, greedy decode throughput at batch 1 and 8 (``generate``, and ``flag_gems.GraphDecoder``
replaying one captured CUDA graph per step) with the peak GPU memory of each, one training
step (forward and backward with labels) and its peak GPU memory; natively only, decode by
``generate`` with a static cache under ``torch.compile`` (skipped with a printed reason where
it fails, runs past its time budget or has no GPU); self CPU (host) and GPU time of one profiled prefill
forward; the logits' error of each against an fp32 copy of the model; which non-view aten
calls of one forward ran our kernels, and the native calls that remain. run.py calls
``measure`` and prints ``text_table`` / ``markdown``. ``transformers`` is a benchmark extra.
"""

import collections
import contextlib
import os
import statistics
import tempfile
import time

LLAMA_SIZES = {
    # name: hidden, layers, heads, KV heads, FFN
    "llama-2k": (2048, 8, 16, 4, 5632),
    "llama-4k": (4096, 8, 32, 8, 14336),
}
QUICK_SIZES = {"llama-tiny": (64, 2, 4, 2, 128)}
# Models whose linears carry a bias (addmm) and whose attention goes through SDPA: a
# forward and a training step each. name: (architecture, hidden, layers, heads)
OTHER_MODELS = {"gpt2-small": ("gpt2", 768, 12, 12), "bert-base": ("bert", 768, 12, 12)}
QUICK_OTHER_MODELS = {"gpt2-tiny": ("gpt2", 64, 2, 4), "bert-tiny": ("bert", 64, 2, 4)}

# prompt tokens, new tokens, decode batches, training batch; then the timing repeats
FULL = dict(prefill=512, prompt=32, new_tokens=64, batches=(1, 8), train=(4, 512), vocab=32000, repeats=10)
QUICK = dict(prefill=16, prompt=4, new_tokens=4, batches=(1, 2), train=(2, 16), vocab=128, repeats=2)

# seconds torch.compile's first decode (compilation included) may take before its rows are skipped;
# 0 skips them
COMPILE_BUDGET_S = float(os.environ.get("GEMS_BENCH_COMPILE_BUDGET", "600"))

# Calls that make no data of their own though aten does not mark them views.
VIEW_LIKE = {"_unsafe_view.default", "lift_fresh.default"}

COLUMNS = ("model", "measure", "native", "enable()", "ratio", "+ patch_model", "ratio ")
TEXT_COLUMNS = {"model", "measure"}
MEANINGS = (
    ("prefill ms", "one forward of a batch of 1 x prefill tokens, no grad, median"),
    ("decode b1 / b8 tok/s", "greedy `generate` of the new tokens from a short prompt at batch 1 and 8: "
                             "new tokens per second over the whole call, median"),
    ("decode b1 / b8 peak GiB", "peak GPU memory allocated during one such call (the model's own memory "
                                "included); likewise for the graph and compile rows"),
    ("graph decode b1 / b8 tok/s", "the same greedy decode by `flag_gems.GraphDecoder`: prefill, then every "
                                   "step a replay of one CUDA graph captured (after warm-up steps) under the "
                                   "column's setting, over a static cache; the decoder is made and captured "
                                   "once, before the timing; on the CPU its steps run eagerly (no capture)"),
    ("compile decode b1 / b8 tok/s", "native only: `generate` with `cache_implementation=\"static\"`, its "
                                     "decode forward under `torch.compile` (transformers' CompileConfig, "
                                     "mode reduce-overhead); skipped on the CPU, on failure or past "
                                     "GEMS_BENCH_COMPILE_BUDGET seconds of first call"),
    ("train step ms", "forward with labels and backward, no optimizer, median"),
    ("train peak GiB", "peak GPU memory allocated during one training step (the model's own memory included)"),
    ("host ms / GPU ms", "self CPU time and GPU kernel time of one profiled prefill forward (torch.profiler)"),
    ("logits error", "max |logits - fp32 model's logits| / max |fp32 logits|, prefill"),
    ("ratio", "native / enable() for times and memory, enable() / native for tokens per second: above 1 means "
              "faster or smaller; for errors, enable() / native"),
    ("+ patch_model", "`enable()` with `flag_gems.patch_model(model)`: the fused norms, MLP activation, rotary "
                      "embedding, residual adds and linear + loss; its ratio is against native likewise"),
)


def _config(vocab, hidden, layers, heads, kv_heads, ffn):
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=ffn, num_hidden_layers=layers,
                       num_attention_heads=heads, num_key_value_heads=kv_heads,
                       max_position_embeddings=4096, pad_token_id=0, bos_token_id=1, eos_token_id=2)


def _timed(fn, device, repeats):
    import torch

    for _ in range(2):  # warm-up: compilation, autotuning, then the launch plans made after tuning
        fn()
    times = []
    for _ in range(repeats):
        if device != "cpu":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device != "cpu":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def _profiled(fn, device):
    """(self CPU ms, GPU ms) of one call."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device != "cpu" else [])
    with profile(activities=activities) as prof:
        fn()
        if device != "cpu":
            torch.cuda.synchronize()
    events = prof.key_averages()
    host = sum(e.self_cpu_time_total for e in events) / 1e3
    gpu = sum(getattr(e, "self_device_time_total", 0) for e in events) / 1e3 if device != "cpu" else None
    return host, gpu


def _peak(fn, device):
    """GiB of GPU memory allocated at the peak of one call (None on the CPU)."""
    import torch

    if device == "cpu":
        return None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / 2**30


def _error(logits, reference):
    return float((logits.float() - reference).abs().max() / reference.abs().max())


def _aten_calls(fn):
    """Counter of the non-view aten calls ``fn`` makes, by packet name (the program's calls,
    as the dispatcher sees them below autograd)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    calls = collections.Counter()

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if not func.is_view and func.__name__ not in VIEW_LIKE:
                calls[func.__name__.split(".")[0]] += 1
            return func(*args, **(kwargs or {}))

    with Count():
        fn()
    return calls


def _ours(log_path):
    """Counter of the record log's calls that ran our kernels, by packet name."""
    ours = collections.Counter()
    with open(log_path) as log:
        for line in log:
            name, impl = line.split("\t")[:2]
            if not impl.startswith("native"):
                ours[name.removeprefix("aten::").split(".")[0]] += 1
    return ours


def _coverage(forward):
    """(calls, ours, the native calls that remain by name) of one forward under enable()."""
    import flag_gems

    with tempfile.TemporaryDirectory() as folder:
        log_path = os.path.join(folder, "record.log")
        with flag_gems.use_gems(record=True, path=log_path):
            calls = _aten_calls(forward)
        ours = _ours(log_path)
    native = calls - ours
    return sum(calls.values()), sum(ours.values()), native


def _prefill_call(model, ids):
    """One forward of ``ids``, no grad: the logits."""
    import torch

    def prefill():
        with torch.no_grad():
            return model(ids).logits

    return prefill


def _train_step_call(model, labels):
    """One training step (forward with labels, backward), gradients dropped after."""
    def train_step():
        model.train()
        model.zero_grad(set_to_none=True)
        model(labels, labels=labels).loss.backward()
        model.zero_grad(set_to_none=True)
        model.eval()

    return train_step


class _Decoders:
    """``flag_gems.GraphDecoder``s made on first use, one per setting (native, enable(),
    patched) and batch: each captures its graph under the setting that made it."""

    def __init__(self, model):
        self.model, self.setting, self.made = model, None, {}

    def generate(self, prompt, new_tokens):
        from flag_gems import GraphDecoder

        key = (self.setting, prompt.shape[0])
        if key not in self.made:
            self.made[key] = GraphDecoder(self.model, prompt.shape[0], prompt.shape[1] + new_tokens)
        return self.made[key].generate(prompt, new_tokens, eos_token_id=[])  # every step, as min_new_tokens

    def clear(self, device):
        self.made.clear()
        if device != "cpu":
            import torch

            torch.cuda.empty_cache()


def _measures(model, ids, prompts, labels, plan, device, decoders):
    """(name, call, repeats, to_number) per measure: ``to_number(ms)`` is what is reported;
    repeats None: the peak GPU memory of one call."""
    prefill = _prefill_call(model, ids)

    def decode(prompt):
        return lambda: model.generate(prompt, max_new_tokens=plan["new_tokens"], min_new_tokens=plan["new_tokens"],
                                      do_sample=False)

    def graph_decode(prompt):
        return lambda: decoders.generate(prompt, plan["new_tokens"])

    train_step = _train_step_call(model, labels)

    measures = [("prefill ms", prefill, plan["repeats"], lambda ms: ms)]
    decode_repeats = max(3, plan["repeats"] // 4)
    for kind, make in (("decode", decode), ("graph decode", graph_decode)):
        for batch, prompt in prompts.items():
            call = make(prompt)
            measures.append((f"{kind} b{batch} tok/s", call, decode_repeats,
                             lambda ms, batch=batch: batch * plan["new_tokens"] / ms * 1e3))
            measures.append((f"{kind} b{batch} peak GiB", call, None, None))
    measures.append(("train step ms", train_step, plan["repeats"], lambda ms: ms))
    return measures, prefill, train_step


def _measured(measure, device):
    _, call, repeats, to_number = measure
    return _peak(call, device) if repeats is None else to_number(_timed(call, device, repeats))


def _compiled(model, prompts, plan, device):
    """(results, why not) of native greedy decode with a static cache under torch.compile:
    per batch its tok/s and peak GiB; a reason instead where it cannot run."""
    if device == "cpu":
        return {}, "torch.compile decode rows: n/a on CPU"
    if COMPILE_BUDGET_S <= 0:
        return {}, "torch.compile decode rows: skipped (GEMS_BENCH_COMPILE_BUDGET=0)"
    import torch
    from transformers.generation.configuration_utils import CompileConfig

    results = {}
    for batch, prompt in prompts.items():
        def call(prompt=prompt):
            return model.generate(prompt, max_new_tokens=plan["new_tokens"], min_new_tokens=plan["new_tokens"],
                                  do_sample=False, cache_implementation="static", compile_config=CompileConfig())

        start = time.perf_counter()
        try:
            call()  # compiles
        except Exception as error:  # noqa: BLE001 - a compile failure skips these rows, reported
            return results, f"torch.compile decode b{batch} failed: {type(error).__name__}: {str(error)[:200]}"
        took = time.perf_counter() - start
        if took > COMPILE_BUDGET_S:
            return results, (f"torch.compile decode b{batch}: first call took {took:.0f} s, over the "
                             f"{COMPILE_BUDGET_S:.0f} s budget (GEMS_BENCH_COMPILE_BUDGET); not timed")
        results[f"compile decode b{batch} tok/s"] = batch * plan["new_tokens"] / _timed(call, device, max(
            3, plan["repeats"] // 4)) * 1e3
        results[f"compile decode b{batch} peak GiB"] = _peak(call, device)
        print(f"  torch.compile decode b{batch}: first call (compilation) {took:.0f} s", flush=True)
    with contextlib.suppress(Exception):
        torch._dynamo.reset()
    vars(model).pop("_compiled_call", None)  # generate's compiled forward
    return results, None


def _unplanned():
    try:
        from flag_gems.fastpath import plans
    except ImportError:
        return []
    return sorted(plans.unplanned.items())


def _routed_calls():
    from flag_gems import fastpath

    extension = fastpath.prebuilt()
    return extension.routed_calls() if extension is not None else 0


def measure_model(name, sizes, plan, device):
    """One model's rows: (measure, native, ours) and the coverage of one forward."""
    import torch
    from transformers import LlamaForCausalLM

    import flag_gems

    torch.manual_seed(0)
    config = _config(plan["vocab"], *sizes)
    with torch.device(device):  # random weights made where they run: no host copy of a large model
        model = LlamaForCausalLM(config).eval()
    vocab = plan["vocab"]
    ids = torch.randint(3, vocab, (1, plan["prefill"]), device=device)
    prompts = {b: torch.randint(3, vocab, (b, plan["prompt"]), device=device) for b in plan["batches"]}
    labels = torch.randint(3, vocab, plan["train"], device=device)
    with torch.no_grad():
        reference = model(ids).logits  # the fp32 model's
    if device != "cpu":
        model.to(torch.bfloat16)

    decoders = _Decoders(model)
    measures, prefill, train_step = _measures(model, ids, prompts, labels, plan, device, decoders)
    native, ours, patched = {}, {}, {}
    try:
        # each measure native then ours, in turn, so that a drift of the machine hits both
        for measure in measures:
            flag_gems.disable()
            decoders.setting = "native"
            native[measure[0]] = _measured(measure, device)
            flag_gems.enable()
            decoders.setting = "enable()"
            ours[measure[0]] = _measured(measure, device)
        decoders.clear(device)
        flag_gems.disable()
        native["train peak GiB"] = _peak(train_step, device)
        native["host ms"], native["GPU ms"] = _profiled(prefill, device)
        native_logits = prefill()
        compiled, compile_note = _compiled(model, prompts, plan, device)
        native.update(compiled)
        if compile_note:
            print(f"  {compile_note}", flush=True)
        flag_gems.enable()
        ours["train peak GiB"] = _peak(train_step, device)
        ours["host ms"], ours["GPU ms"] = _profiled(prefill, device)
        our_logits = prefill()
        with torch.no_grad():
            coverage = _coverage(lambda: model(ids))
            replayed = _routed_calls()
            model(ids)
            replayed = _routed_calls() - replayed
        flag_gems.patch_model(model)  # last: in place
        decoders.setting = "patched"
        for measure in measures:
            patched[measure[0]] = _measured(measure, device)
        decoders.clear(device)
        patched["train peak GiB"] = _peak(train_step, device)
        patched["host ms"], patched["GPU ms"] = _profiled(prefill, device)
        patched_logits = prefill()
    finally:
        flag_gems.disable()
    coverage = (*coverage, replayed, [compile_note] if compile_note else [])
    for results, logits in ((native, native_logits), (ours, our_logits), (patched, patched_logits)):
        results["logits error"] = _error(logits, reference)
    measured = [measure[0] for measure in measures]
    after_graphs = max(i for i, label in enumerate(measured) if label.startswith("graph decode")) + 1
    order = measured[:after_graphs] + list(compiled) + measured[after_graphs:]
    order += [label for label in native if label not in order]
    rows = [(label, native[label], ours.get(label), patched.get(label)) for label in order]
    print(text_table([(name, rows, coverage)], _plain), flush=True)  # as it comes: a later model may not finish
    return rows, coverage


def _plain(value):
    return "-" if value is None else f"{value:.4g}"


def _ratio(measure, native, ours):
    if native is None or ours is None or not native or not ours:
        return None
    if measure.endswith("tok/s"):
        return ours / native
    return ours / native if measure == "logits error" else native / ours


def _other_model(architecture, hidden, layers, heads, vocab, device):
    import torch

    if architecture == "gpt2":
        from transformers import GPT2Config, GPT2LMHeadModel

        config = GPT2Config(vocab_size=vocab, n_embd=hidden, n_layer=layers, n_head=heads, n_positions=1024)
        cls = GPT2LMHeadModel
    else:
        from transformers import BertConfig, BertForMaskedLM

        config = BertConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                            intermediate_size=4 * hidden, max_position_embeddings=512)
        cls = BertForMaskedLM
    with torch.device(device):
        return cls(config).eval()


def measure_other_model(name, spec, plan, device):
    """A biased-linear model's rows (prefill, training step, host and GPU time, logits error;
    no decode, no patch_model: the patch leaves these architectures as they are)."""
    import torch

    import flag_gems

    torch.manual_seed(0)
    vocab = plan["vocab"]
    model = _other_model(*spec, vocab, device)
    ids = torch.randint(3, vocab, (1, plan["prefill"]), device=device)
    labels = torch.randint(3, vocab, plan["train"], device=device)
    with torch.no_grad():
        reference = model(ids).logits
    if device != "cpu":
        model.to(torch.bfloat16)

    prefill, train_step = _prefill_call(model, ids), _train_step_call(model, labels)

    native, ours = {}, {}
    try:
        for label, call in (("prefill ms", prefill), ("train step ms", train_step)):
            flag_gems.disable()
            native[label] = _timed(call, device, plan["repeats"])
            flag_gems.enable()
            ours[label] = _timed(call, device, plan["repeats"])
        for results, enabled in ((native, False), (ours, True)):
            (flag_gems.enable if enabled else flag_gems.disable)()
            results["train peak GiB"] = _peak(train_step, device)
            results["host ms"], results["GPU ms"] = _profiled(prefill, device)
            results["logits error"] = _error(prefill(), reference)
        with torch.no_grad():
            coverage = _coverage(lambda: model(ids))
            replayed = _routed_calls()
            model(ids)
            replayed = _routed_calls() - replayed
    finally:
        flag_gems.disable()
    rows = [(label, native[label], ours[label], None) for label in native]
    coverage = (*coverage, replayed, [])
    print(text_table([(name, rows, coverage)], _plain), flush=True)
    return rows, coverage


def measure(quick, device):
    """Every model's results: a list of (name, rows, coverage)."""
    plan = QUICK if quick else FULL
    results = []
    models = [(name, measure_model, sizes) for name, sizes in (QUICK_SIZES if quick else LLAMA_SIZES).items()]
    models += [(name, measure_other_model, spec)
               for name, spec in (QUICK_OTHER_MODELS if quick else OTHER_MODELS).items()]
    for name, measure_one, sizes in models:
        print(f"model: {name}", flush=True)
        try:
            results.append((name, *measure_one(name, sizes, plan, device)))
        except Exception as error:  # noqa: BLE001 - reported as a problem, the other models still run
            results.append((name, [], f"{type(error).__name__}: {error}"))
    return results


def problems(results):
    return [f"model {name}: {coverage}" for name, rows, coverage in results if isinstance(coverage, str)]


def _table(results, number):
    rows = []
    for name, measures, coverage in results:
        for measure, native, ours, patched in measures:
            ratios = [_ratio(measure, native, value) for value in (ours, patched)]
            ratios = [f"{number(r)}x" if r else "-" for r in ratios]
            rows.append((name, measure, number(native), number(ours), ratios[0], number(patched), ratios[1]))
    return rows


def _speedup_lines(name, measures):
    """Per decode batch: each way's tokens per second against native eager ``generate``."""
    values = {measure: values for measure, *values in measures}
    lines = []
    for measure, (native, _, _) in values.items():
        if not (measure.startswith("decode b") and measure.endswith("tok/s")) or not native:
            continue
        batch = measure.split()[1]
        ways = [(f"GraphDecoder {label}", values.get(f"graph decode {batch} tok/s", (None,) * 3)[column])
                for column, label in enumerate(("native", "enable()", "+ patch_model"))]
        ways.append(("torch.compile", values.get(f"compile decode {batch} tok/s", (None,))[0]))
        shown = [f"{way} {value / native:.2f}x" for way, value in ways if value]
        if shown:
            lines.append(f"{name} decode {batch} against native eager generate: " + ", ".join(shown))
    return lines


def _coverage_lines(results):
    lines = []
    for name, measures, coverage in results:
        if isinstance(coverage, str):
            continue
        calls, ours, native, replayed, notes = coverage
        lines += _speedup_lines(name, measures)
        lines += [f"{name}: {note}" for note in notes]
        remaining = ", ".join(f"{op} {count}" for op, count in native.most_common()) or "none"
        lines.append(f"{name}: {ours} of {calls} non-view aten calls of one prefill forward ran our kernels "
                     f"({100 * ours / max(calls, 1):.0f}%); native: {remaining}; {replayed} calls answered by "
                     "the C++ routes with no Python (a plan replayed, or native called)")
    unplanned = _unplanned()
    if unplanned:
        lines.append("left to the Python router (why): " + "; ".join(f"{op} ({why})" for op, why in unplanned))
    return lines


def text_table(results, number):
    rows = [COLUMNS] + _table(results, number)
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(v.ljust(w) if c in TEXT_COLUMNS else v.rjust(w) for c, v, w in zip(COLUMNS, row, widths))
             for row in rows]
    return "\n".join(lines + [""] + _coverage_lines(results))


def markdown(results, number, quick):
    plan = QUICK if quick else FULL
    lines = ["## Models", "",
             f"Llama-architecture `LlamaForCausalLM` from configs with random weights (hidden, layers, heads, "
             f"KV heads, FFN: {', '.join(f'{n} {s}' for n, s in (QUICK_SIZES if quick else LLAMA_SIZES).items())}; "
             f"vocab {plan['vocab']}), bf16 on the GPU; prefill {plan['prefill']} tokens, decode "
             f"{plan['new_tokens']} new tokens after a {plan['prompt']}-token prompt, training batch "
             f"{plan['train'][0]}x{plan['train'][1]}. Native and `flag_gems.enable()` in turn per measure, then "
             "`enable()` with `flag_gems.patch_model`, in one process; graph decode rows: `flag_gems.GraphDecoder` "
             "captured under each setting; compile rows: native only. "
             f"GPT-2 and BERT (`GPT2LMHeadModel`, `BertForMaskedLM`; hidden, layers, heads: "
             f"{', '.join(f'{n} {s[1:]}' for n, s in (QUICK_OTHER_MODELS if quick else OTHER_MODELS).items())}): "
             "biased linears (addmm) and SDPA attention; prefill and training step only.", ""]
    lines += [f"- {measure}: {meaning}" for measure, meaning in MEANINGS]
    lines += ["", "| " + " | ".join(COLUMNS) + " |",
              "| " + " | ".join("---" if c in TEXT_COLUMNS else "---:" for c in COLUMNS) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in _table(results, number)]
    lines += [""] + [f"- {line}" for line in _coverage_lines(results)]
    return "\n".join(lines) + "\n"
