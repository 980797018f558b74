"""PyTorch's own OpInfo sample inputs for our operators: ours through the
dispatcher must match native on every sample, or raise the same error."""

import pytest
import torch
from torch.utils._pytree import tree_leaves, tree_map

import flag_gems

from conftest import DEVICE, ON_GPU

pytest.importorskip("expecttest")  # torch.testing._internal needs it
from torch.testing._internal.common_methods_invocations import op_db  # noqa: E402

def _aten_bases():
    return {row.base for row in flag_gems.ops.collect_rows()}


def _ours(op, bases):
    """Whether an OpInfo's aten operator is one of our rows: by name, or as the leaf
    overload it reaches (_softmax, native_layer_norm, nll_loss_forward, _cummax_helper...)."""
    for name in {op.aten_name, op.name.rpartition(".")[2]} - {None, ""}:
        forms = {name, f"_{name}", f"native_{name}", f"{name}_forward", f"_fused_{name}", f"{name}_",
                 f"_{name}_helper"}
        if forms & bases:
            return not op.name.startswith("sparse.")
    return False


# OpInfos that reach our rows through a composite or an alias of another name.
COMPOSITES = {"true_divide", "nn.functional.cross_entropy", "nn.functional.rms_norm", "linalg.norm",
              "masked.amax", "masked.amin", "masked.argmax", "masked.argmin", "masked.cumprod", "masked.cumsum",
              "masked.log_softmax", "masked.logsumexp", "masked.mean", "masked.norm", "masked.prod",
              "masked.softmax", "masked.std", "masked.sum", "masked.var",
              "nn.functional.pad", "diag", "diagonal", "unfold"}
_BASES = _aten_bases()
OPS = [op for op in op_db if _ours(op, _BASES) or op.name in COMPOSITES]
DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int32, torch.int64, torch.uint8,
          torch.bool]


def _outcome(op, sample):
    try:
        return op(sample.input, *sample.args, **sample.kwargs), None
    except Exception as error:  # noqa: BLE001 - compared with native's exception type
        return None, type(error)


def _compare(ours, native, dtype, atol):
    if isinstance(native, torch.Tensor):
        assert isinstance(ours, torch.Tensor) and ours.dtype == native.dtype and ours.shape == native.shape
        low = dtype in (torch.float16, torch.bfloat16)
        torch.testing.assert_close(ours, native, equal_nan=True, rtol=2e-2 if low else 1.3e-5, atol=atol)
    else:  # tuples/lists of tensors
        for mine, theirs in zip(ours, native):
            _compare(mine, theirs, dtype, atol)


# Only the dtypes torch itself has for the op on this device.
CASES = [(op, dtype) for op in OPS for dtype in DTYPES if dtype in op.supported_dtypes(DEVICE)]


@pytest.mark.parametrize("op, dtype", CASES, ids=[
    f"{op.name}{'-' + op.variant_test_name if op.variant_test_name else ''}-{str(dtype)[6:]}" for op, dtype in CASES])
def test_opinfo_samples(op, dtype):
    if op.name == "masked.prod" and dtype == torch.bfloat16 and not ON_GPU:
        pytest.skip("the interpreter truncates each bf16 partial product (one dim at a time), and a product "
                    "compounds that; the GPU rounds them")
    samples = list(op.sample_inputs(DEVICE, dtype, requires_grad=False))
    assert samples
    atol = 2e-2 if dtype in (torch.float16, torch.bfloat16) else 1e-5
    if op.variant_test_name.endswith("_rounding") and dtype == torch.bfloat16 and not ON_GPU:
        atol = 1.0  # the interpreter truncates bf16 conversions: a rounded quotient can move by one
    for sample in samples:
        native, native_error = _outcome(op, sample)
        with flag_gems.use_gems():
            ours, our_error = _outcome(op, sample)
        assert our_error is native_error, f"{sample}: native raised {native_error}, ours {our_error}"
        if native_error is None:
            try:
                _compare(ours, native, dtype, atol)
            except AssertionError:
                if dtype not in (torch.float16, torch.bfloat16):
                    raise
                _assert_closer_to_fp64(op, sample, ours, native)


def _assert_closer_to_fp64(op, sample, ours, native):
    """Native half-precision results may round intermediates that ours keeps in fp32:
    then ours must be at least as close as native to the op computed in fp64."""
    def widen(value):
        if isinstance(value, torch.dtype) and value.is_floating_point:
            return torch.float64  # a dtype= argument would round the reference too
        return value.double() if isinstance(value, torch.Tensor) and value.is_floating_point() else value

    args, kwargs = tree_map(widen, (sample.args, sample.kwargs))
    reference = op(widen(sample.input), *args, **kwargs)
    for mine, theirs, exact in zip(*(tree_leaves(v) for v in (ours, native, reference))):
        if isinstance(exact, torch.Tensor) and exact.is_floating_point():
            our_error = (mine.double() - exact).abs().nan_to_num(0).max()
            native_error = (theirs.double() - exact).abs().nan_to_num(0).max()
            assert our_error <= native_error * 1.01 + 1e-6, (our_error, native_error)


def _input_gradients(op, sample, seed):
    """Gradients of every input that requires one, for a seeded random cotangent of each output."""
    inputs = [t for t in tree_leaves((sample.input, sample.args, sample.kwargs))
              if isinstance(t, torch.Tensor) and t.requires_grad]
    outputs = [o for o in tree_leaves(op(sample.input, *sample.args, **sample.kwargs))
               if isinstance(o, torch.Tensor) and o.requires_grad]
    generator = torch.Generator(device=DEVICE).manual_seed(seed)
    cotangents = [torch.randn(o.shape, generator=generator, dtype=o.dtype, device=o.device) for o in outputs]
    return torch.autograd.grad(outputs, inputs, cotangents, allow_unused=True)


GRAD_OPS = [op for op in OPS if op.supports_autograd and torch.float64 in op.supported_backward_dtypes(DEVICE)]


@pytest.mark.parametrize("op", GRAD_OPS, ids=[
    f"{op.name}{'-' + op.variant_test_name if op.variant_test_name else ''}" for op in GRAD_OPS])
def test_opinfo_gradients_fp64(op):
    # fp64 gradients within a few fp64 roundings of native's: any fp32 step in our backward
    # paths shows. Not tighter: native's CPU hardsigmoid backward itself scales by fp32's 1/6.
    for seed, sample in enumerate(list(op.sample_inputs(DEVICE, torch.float64, requires_grad=True))[:8]):
        try:
            native = _input_gradients(op, sample, seed)
        except Exception as error:  # noqa: BLE001 - ours must then raise the same
            with flag_gems.use_gems(), pytest.raises(type(error)):
                _input_gradients(op, sample, seed)
            continue
        with flag_gems.use_gems():
            ours = _input_gradients(op, sample, seed)
        for mine, theirs in zip(ours, native):
            assert (mine is None) == (theirs is None), sample
            if theirs is not None:
                torch.testing.assert_close(mine, theirs, rtol=5e-8, atol=1e-12, equal_nan=True, msg=str(sample))
