"""PyTorch's own OpInfo sample inputs for our operators: ours through the
dispatcher must match native on every sample, or raise the same error."""

import pytest
import torch
from torch.utils._pytree import tree_leaves, tree_map

import flag_gems

from conftest import DEVICE, ON_GPU

pytest.importorskip("expecttest")  # torch.testing._internal needs it
from torch.testing._internal.common_methods_invocations import op_db  # noqa: E402

NAMES = {"add", "sub", "mul", "div", "true_divide", "sum", "softmax", "_softmax_backward_data", "mm",
         "mean", "prod", "amax", "amin", "max", "min", "argmax", "argmin", "aminmax", "var", "std", "var_mean",
         "std_mean", "norm", "linalg.vector_norm", "all", "any", "count_nonzero", "logsumexp",
         "cumsum", "cumprod", "cummax", "cummin", "logcumsumexp", "log_softmax", "nn.functional.layer_norm",
         "nn.functional.rms_norm", "nn.functional.cross_entropy", "nn.functional.nll_loss", "nn.functional.mse_loss",
         "nn.functional.smooth_l1_loss", "nn.functional.huber_loss", "nn.functional.binary_cross_entropy",
         "nn.functional.binary_cross_entropy_with_logits",
         # pointwise, comparison and activation families
         "abs", "acos", "acosh", "addcdiv", "addcmul", "asin", "asinh", "atan", "atan2", "atanh", "bitwise_and",
         "bitwise_left_shift", "bitwise_not", "bitwise_or", "bitwise_right_shift", "bitwise_xor", "ceil", "clamp",
         "clamp_max", "clamp_min", "clone", "copysign", "cos", "cosh", "digamma", "eq", "erf", "erfc", "erfinv", "exp",
         "exp2", "expm1", "floor", "floor_divide", "fmax", "fmin", "fmod", "frac", "ge", "gt", "hypot", "isinf",
         "isnan", "isneginf", "isposinf", "le", "lerp", "lgamma", "log", "log10", "log1p", "log2", "logical_and",
         "logical_not", "logical_or", "logical_xor", "logit", "lt", "masked_fill", "maximum", "minimum",
         "nan_to_num", "ne", "neg", "nextafter", "nn.functional.celu", "nn.functional.elu", "nn.functional.gelu",
         "nn.functional.glu", "nn.functional.hardsigmoid", "nn.functional.hardswish", "nn.functional.hardtanh",
         "nn.functional.leaky_relu", "nn.functional.mish", "nn.functional.relu", "nn.functional.silu",
         "nn.functional.softplus", "nn.functional.threshold", "pow", "reciprocal", "remainder", "round", "rsqrt",
         "rsub", "sgn", "sigmoid", "sign", "sin", "sinh", "sqrt", "tan", "tanh", "trunc", "where", "zero_",
         # composites of our kernels
         "linalg.norm", "masked.amax", "masked.amin", "masked.argmax", "masked.argmin", "masked.cumprod",
         "masked.cumsum", "masked.log_softmax", "masked.logsumexp", "masked.mean", "masked.norm", "masked.prod",
         "masked.softmax", "masked.std", "masked.sum", "masked.var", "native_group_norm", "native_layer_norm"}
OPS = [op for op in op_db if op.name in NAMES]
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
