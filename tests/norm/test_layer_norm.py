"""native_layer_norm, _fused_rms_norm, their backward and the fused functions
(rms_norm, fused_add_rms_norm, add_rms_norm, skip_layer_norm) against PyTorch in fp64."""

import pytest
import torch
import torch.nn.functional as F

import flag_gems
from flag_gems.testing import assert_close

from conftest import DEVICE, FLOAT_DTYPES, ON_GPU, assert_same_error, error_of, make, pick

# (input shape, normalized_shape)
SHAPES = [
    ((7,), (7,)),
    (pick((5, 33), (4096, 4096)), None),
    (pick((3, 4, 10), (16, 128, 1024)), None),
    (pick((3, 4, 10), (16, 128, 1024)), "2d"),  # normalized over the last two dims
    (pick((9, 8), (8192, 128)), None),  # several rows per program
    (pick((2, 40000), (8, 70000)), None),  # longer than one tile: looped passes
    ((0, 6), (6,)),  # empty batch
]


def normalized(shape, spec):
    return tuple(shape[-2:]) if spec == "2d" else (spec or tuple(shape[-1:]))


def params(shape, dtype, weight=True, bias=True):
    w = make(shape, dtype) if weight else None
    b = make(shape, dtype) if bias else None
    return w, b


def double(t):
    return None if t is None else t.double()


# Routes run through torch's aten calls under use_gems; the fused rms rows exist only
# where the backend has a native _fused_rms_norm_backward (not on the CPU interpreter).
FUSED_RMS_ROWS = torch._C._dispatch_has_kernel_for_dispatch_key(
    "aten::_fused_rms_norm_backward", flag_gems.runtime.selected_vendor().dispatch_key)


def assert_as_accurate(ours, native, reference):
    """``ours`` is at most twice as far from the fp64 ``reference`` as native is (gradients in half
    types carry the rounding of their inputs, natively too)."""
    ours_error = (ours.double() - reference).abs().max().item()
    native_error = (native.double() - reference).abs().max().item()
    # The interpreter truncates bf16 stores where the GPU rounds them: twice the error again.
    factor = 4 if ours.dtype == torch.bfloat16 and not ON_GPU else 2
    ulps = 4 * torch.finfo(ours.dtype).eps * reference.abs().max().item()
    assert ours_error <= factor * native_error + ulps, (ours_error, native_error)


# ------------------------------------------------------------------ layer norm

@pytest.mark.parametrize("shape, spec", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("affine", ["weight+bias", "weight", "none"])
def test_layer_norm_forward(shape, spec, dtype, affine):
    ns = normalized(shape, spec)
    x = make(shape, dtype)
    w, b = params(ns, dtype, affine != "none", affine == "weight+bias")
    native = torch.native_layer_norm(x, ns, w, b, 1e-5)
    with flag_gems.use_gems():
        ours = torch.native_layer_norm(x, ns, w, b, 1e-5)
    reference = torch.native_layer_norm(x.double(), ns, double(w), double(b), 1e-5)
    for mine, theirs, exact in zip(ours, native, reference):
        assert mine.dtype == theirs.dtype and mine.shape == theirs.shape
        assert_close(mine, exact, mine.dtype)


@pytest.mark.parametrize("shape, spec", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("output_mask", [(True, True, True), (True, False, False), (False, True, True),
                                         (False, False, True)], ids=str)
def test_layer_norm_backward(shape, spec, dtype, output_mask):
    ns = normalized(shape, spec)
    x, g = make(shape, dtype), make(shape, dtype)
    w, b = params(ns, dtype)
    _, mean, rstd = torch.native_layer_norm(x, ns, w, b, 1e-5)
    call = torch.ops.aten.native_layer_norm_backward
    native = call(g, x, ns, mean, rstd, w, b, output_mask)
    with flag_gems.use_gems():
        ours = call(g, x, ns, mean, rstd, w, b, output_mask)
    reference = call(g.double(), x.double(), ns, mean.double(), rstd.double(), w.double(), b.double(), output_mask)
    rows = x.numel() // w.numel() if x.numel() else 1
    for mine, theirs, exact, reduced in zip(ours, native, reference, (w.numel(), rows, rows)):
        if theirs is None:
            assert mine is None
            continue
        assert mine.dtype == theirs.dtype and mine.shape == theirs.shape
        assert_close(mine, exact, dtype, reduce_dim=reduced)


def test_layer_norm_non_contiguous_and_broadcast_inputs():
    rows, cols = pick((12, 30), (2048, 1024))
    base = make((rows, cols), torch.float32)
    cases = [
        base.t(),  # transposed: copied
        base[::2],  # sliced rows: read in place with a row stride
        base[:, ::2],  # strided elements: copied
        make((1, cols), torch.float32).expand(5, cols),  # one row seen five times
        make((5, 1), torch.float32).expand(5, cols),  # constant rows, stride 0 inside: copied
        make((3, 4, cols), torch.float32)[:, 1:],  # rows of a sliced middle dim
    ]
    for x in cases:
        ns = x.shape[-1:]
        weight, bias = params(ns, torch.float32) if x is cases[0] else (None, None)
        with flag_gems.use_gems():
            ours = torch.native_layer_norm(x, ns, weight, bias, 1e-5)
        reference = torch.native_layer_norm(x.double(), ns, double(weight), double(bias), 1e-5)
        for mine, exact in zip(ours, reference):
            assert_close(mine, exact, torch.float32)
        g = make(x.shape, torch.float32).t().contiguous().t() if x.dim() == 2 else make(x.shape, torch.float32)
        call = torch.ops.aten.native_layer_norm_backward
        with flag_gems.use_gems():
            grads = call(g, x, ns, ours[1], ours[2], weight, bias, (True, weight is not None, bias is not None))
        expected = call(g.double(), x.double(), ns, reference[1], reference[2], double(weight), double(bias),
                        (True, weight is not None, bias is not None))
        for mine, exact in zip(grads, expected):
            if exact is not None:
                assert_close(mine, exact, torch.float32, reduce_dim=x.shape[0])


def test_planned_layouts_are_not_mixed_up():
    """Each call layout gets its own launch plan: alternating layouts of one shape (in place,
    transposed and copied, off 16-byte alignment), with and without parameters and with
    different gradient masks, each get their own right answer, on first and repeated calls."""
    rows, cols = pick((6, 40), (512, 4096))
    flat = make((rows * cols + 1,), torch.float32)
    layouts = [flat[:-1].view(rows, cols), flat[1:].view(rows, cols), flat[:-1].view(cols, rows).t()]
    weight, bias = params((cols,), torch.float32)
    call = torch.ops.aten.native_layer_norm_backward
    for _ in range(2):
        for x in layouts:
            for w, b, mask in ((weight, bias, (True, True, True)), (None, None, (True, False, False)),
                               (weight, bias, (False, True, False))):
                with flag_gems.use_gems():
                    ours = torch.native_layer_norm(x, (cols,), w, b, 1e-5)
                reference = torch.native_layer_norm(x.double(), (cols,), double(w), double(b), 1e-5)
                for mine, exact in zip(ours, reference):
                    assert_close(mine, exact, torch.float32)
                g = make(x.shape, torch.float32)
                # statistics that are not contiguous: a column of a wider tensor
                mean, rstd = (torch.cat([s, s], 1)[:, :1] for s in ours[1:])
                with flag_gems.use_gems():
                    grads = call(g, x, (cols,), mean, rstd, w, b, mask)
                expected = call(g.double(), x.double(), (cols,), reference[1], reference[2], double(w), double(b),
                                mask)
                for mine, exact in zip(grads, expected):
                    assert (mine is None) == (exact is None)
                    if exact is not None:
                        assert_close(mine, exact, torch.float32, reduce_dim=rows)


def test_layer_norm_strided_parameters():
    x = make((4, 3, 5), torch.float32)
    w, b = make((5, 3), torch.float32).t(), make((3, 10), torch.float32)[:, ::2]
    g = make(x.shape, torch.float32)
    with flag_gems.use_gems():
        ours = torch.native_layer_norm(x, (3, 5), w, b, 1e-5)
        grads = torch.ops.aten.native_layer_norm_backward(g, x, (3, 5), ours[1], ours[2], w, b, [True] * 3)
    reference = torch.native_layer_norm(x.double(), (3, 5), w.double(), b.double(), 1e-5)
    expected = torch.ops.aten.native_layer_norm_backward(g.double(), x.double(), (3, 5), reference[1],
                                                         reference[2], w.double(), b.double(), [True] * 3)
    for mine, exact in zip(ours + grads, reference + expected):
        assert_close(mine, exact, torch.float32, reduce_dim=4)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_layer_norm_autograd_matches_native(dtype):
    shape = pick((6, 40), (1024, 4096))
    x = make(shape, dtype).requires_grad_()
    w, b = (t.requires_grad_() for t in params(shape[-1:], dtype))
    g = make(shape, dtype)
    inputs = (x, w, b)
    native = torch.autograd.grad((F.layer_norm(x, shape[-1:], w, b) * g).sum(), inputs)
    with flag_gems.use_gems():
        ours = torch.autograd.grad((F.layer_norm(x, shape[-1:], w, b) * g).sum(), inputs)
    exact_inputs = [t.detach().double().requires_grad_() for t in inputs]
    reference = torch.autograd.grad((F.layer_norm(exact_inputs[0], shape[-1:], *exact_inputs[1:]) * g.double()).sum(),
                                    exact_inputs)
    for mine, theirs, exact in zip(ours, native, reference):
        assert mine.dtype == theirs.dtype
        assert_as_accurate(mine, theirs, exact)


def test_layer_norm_gradcheck():
    x = make((3, 2, 5), torch.float64).requires_grad_()
    w, b = (t.requires_grad_() for t in params((2, 5), torch.float64))
    with flag_gems.use_gems():
        assert torch.autograd.gradcheck(lambda *t: F.layer_norm(t[0], (2, 5), t[1], t[2]), (x, w, b))
        assert torch.autograd.gradcheck(lambda t: F.layer_norm(t, (5,)), (x,))


def test_autograd_runs_our_kernels(tmp_path):
    path = tmp_path / "norms.log"
    x = make((3, 8), torch.float32).requires_grad_()
    w = make((8,), torch.float32).requires_grad_()
    with flag_gems.use_gems(record=True, path=str(path)):
        (F.layer_norm(x, (8,), w) + F.rms_norm(x, (8,), w)).sum().backward()
    log = path.read_text()
    names = ["native_layer_norm", "native_layer_norm_backward"]
    if FUSED_RMS_ROWS:
        names += ["_fused_rms_norm", "_fused_rms_norm_backward"]
    for name in names:
        assert f"aten::{name}\ttriton" in log, name


def test_layer_norm_errors_match_native():
    x = make((4, 6), torch.float32)
    assert_same_error(lambda: F.layer_norm(x, (5,)))
    assert_same_error(lambda: F.layer_norm(x, (4, 6, 1)))
    assert_same_error(lambda: torch.native_layer_norm(x, [], None, None, 1e-5))
    assert_same_error(lambda: F.layer_norm(x, (6,), make((5,), torch.float32)))
    assert_same_error(lambda: F.layer_norm(make((4, 6), torch.int32), (6,)))
    assert_same_error(lambda: torch.ops.aten.native_layer_norm_backward(
        x, x, [6], x[:, :1], x[:, :1], None, None, [True, True, False]))


# ------------------------------------------------------------------ RMS norm

def rms_reference(x, ns, w, eps):
    return F.rms_norm(x.double(), ns, double(w), eps)


@pytest.mark.parametrize("shape, spec", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("has_weight", [True, False])
def test_fused_rms_norm(shape, spec, dtype, has_weight):
    ns = normalized(shape, spec)
    x = make(shape, dtype)
    w = make(ns, dtype) if has_weight else None
    y, rstd = flag_gems.ops.fused_rms_norm(x, ns, w, 1e-6)
    assert y.dtype == dtype and y.shape == x.shape
    assert rstd.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    assert rstd.shape == x.shape[:x.dim() - len(ns)] + (1,) * len(ns)
    assert_close(y, rms_reference(x, ns, w, 1e-6), dtype)
    g = make(shape, dtype)
    dx, dw = flag_gems.ops.fused_rms_norm_backward(g, x, ns, rstd, w, [True, has_weight])
    exact = [x.double().requires_grad_()] + ([w.double().requires_grad_()] if has_weight else [])
    reference = torch.autograd.grad((rms_reference(exact[0], ns, exact[1] if has_weight else None, 1e-6)
                                     * g.double()).sum(), exact)
    assert dx.dtype == dtype and dx.shape == x.shape
    assert_close(dx, reference[0], dtype, reduce_dim=x[0].numel() if x.numel() else 1)
    if has_weight:
        assert dw.dtype == dtype and dw.shape == w.shape
        assert_close(dw, reference[1], dtype, reduce_dim=max(x.numel() // w.numel(), 1))
    else:
        assert dw is None


@pytest.mark.skipif(not FUSED_RMS_ROWS, reason="this backend has no native _fused_rms_norm_backward")
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_functional_rms_norm_routes_to_us(dtype):
    x = make((64, 512), dtype)
    w = make((512,), dtype)
    native = torch.ops.aten._fused_rms_norm(x, [512], w, None)
    with flag_gems.use_gems():
        ours = torch.ops.aten._fused_rms_norm(x, [512], w, None)
        functional = F.rms_norm(x, (512,), w)
    for mine, theirs in zip(ours, native):
        assert mine.dtype == theirs.dtype and mine.shape == theirs.shape
    assert_close(ours[0], rms_reference(x, (512,), w, torch.finfo(ours[1].dtype).eps), dtype)
    assert_close(functional, ours[0], dtype)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_functional_rms_norm_autograd(dtype):
    """Routed through _fused_rms_norm on GPUs; on the interpreter F.rms_norm decomposes natively."""
    shape = pick((6, 40), (1024, 4096))
    x = make(shape, dtype).requires_grad_()
    w = make(shape[-1:], dtype).requires_grad_()
    g = make(shape, dtype)
    native = torch.autograd.grad((F.rms_norm(x, shape[-1:], w) * g).sum(), (x, w))
    with flag_gems.use_gems():
        ours = torch.autograd.grad((F.rms_norm(x, shape[-1:], w) * g).sum(), (x, w))
    exact = [t.detach().double().requires_grad_() for t in (x, w)]
    reference = torch.autograd.grad((F.rms_norm(exact[0], shape[-1:], exact[1]) * g.double()).sum(), exact)
    for mine, theirs, want in zip(ours, native, reference):
        assert mine.dtype == theirs.dtype
        assert_as_accurate(mine, theirs, want)


def test_fused_rms_norm_explicit_falls_back_on_bad_input():
    x = make((4, 6), torch.float32)
    assert_same_error(lambda: flag_gems.ops.fused_rms_norm(x, [5], None, None))
    # Mixed dtypes go to native, which takes them on the CPU and raises on CUDA.
    wide_weight = make((6,), torch.float64)
    native_error = error_of(lambda: torch.ops.aten._fused_rms_norm(x, [6], wide_weight, None))
    assert error_of(lambda: flag_gems.ops.fused_rms_norm(x, [6], wide_weight, None)) is native_error
    if native_error is None:
        assert flag_gems.ops.fused_rms_norm(x, [6], wide_weight, None)[0].dtype == torch.float32


# ------------------------------------------------------------------ fused functions

@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", [(7,), pick((5, 33), (512, 4096)), pick((2, 40000), (4, 70000))], ids=str)
def test_rms_norm_function(dtype, shape):
    x = make(shape, dtype)
    w = make(shape[-1:], dtype)
    reference = rms_reference(x, shape[-1:], w, 1e-5)
    assert_close(flag_gems.rms_norm(x, shape[-1:], w, 1e-5), reference, dtype)
    assert_close(flag_gems.rms_norm(x, shape[-1], w), reference, dtype)
    assert_close(flag_gems.rms_norm(x, w, 1e-5), reference, dtype)  # FlagGems' C++ operator's form
    assert_close(flag_gems.ops.rms_norm(x, shape[-1:]), rms_reference(x, shape[-1:], None, 1e-5), dtype)


def test_rms_norm_function_gradcheck():
    x = make((3, 2, 5), torch.float64).requires_grad_()
    w = make((2, 5), torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: flag_gems.rms_norm(a, (2, 5), b, 1e-5), (x, w))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", [pick((5, 33), (512, 4096)), pick((2, 3, 40000), (2, 2, 70000))], ids=str)
def test_fused_add_rms_norm_in_place(dtype, shape):
    x, residual = make(shape, dtype), make(shape, dtype)
    w = make(shape[-1:], dtype)
    h = x + residual  # rounded to dtype, as the unfused add is
    ours_x, ours_residual = flag_gems.fused_add_rms_norm(x, residual, shape[-1:], w, 1e-5)
    assert ours_x is x and ours_residual is residual
    assert_close(residual, h.double(), dtype)
    # Normalized is the sum as stored (the interpreter truncates it to bf16 where GPUs round).
    assert_close(x, rms_reference(residual, shape[-1:], w, 1e-5), dtype)


def test_fused_add_rms_norm_non_contiguous():
    x = make((8, 6), torch.float32).t()
    residual = make((6, 16), torch.float32)[:, ::2]
    w = make((8,), torch.float32)
    h = (x + residual).double()
    expected = rms_reference(h, (8,), w, 1e-5)
    flag_gems.fused_add_rms_norm(x, residual, (8,), w)
    assert_close(residual, h, torch.float32)
    assert_close(x, expected, torch.float32)


def test_fused_add_rms_norm_autograd():
    shape = pick((4, 12), (256, 1024))
    x0, r0 = make(shape, torch.float64).requires_grad_(), make(shape, torch.float64).requires_grad_()
    w = make(shape[-1:], torch.float64).requires_grad_()
    gy, gr = make(shape, torch.float64), make(shape, torch.float64)

    def run(fused):
        x, residual = x0 * 1.5, r0 * 0.5  # non-leaf: may be updated in place
        if fused:
            y, h = flag_gems.fused_add_rms_norm(x, residual, shape[-1:], w)
        else:
            h = x + residual
            y = F.rms_norm(h, shape[-1:], w, 1e-5)
        return torch.autograd.grad((y * gy).sum() + (h * gr).sum(), (x0, r0, w))

    for mine, exact in zip(run(True), run(False)):
        assert_close(mine, exact, torch.float64, reduce_dim=shape[0])


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", [pick((5, 33), (512, 4096)), pick((2, 3, 40000), (2, 2, 70000))], ids=str)
def test_add_rms_norm_leaves_its_operands(dtype, shape):
    x, residual = make(shape, dtype), make(shape, dtype)
    x_before, residual_before = x.clone(), residual.clone()
    w = make(shape[-1:], dtype)
    h = x + residual  # rounded to dtype, as the unfused add is
    y, ours_h = flag_gems.add_rms_norm(x, residual, shape[-1:], w, 1e-5)
    assert torch.equal(x, x_before) and torch.equal(residual, residual_before)
    assert_close(ours_h, h.double(), dtype)
    assert_close(y, rms_reference(ours_h, shape[-1:], w, 1e-5), dtype)


@pytest.mark.filterwarnings("ignore:Mismatch dtype between input and weight")  # PyTorch's own, unfused
def test_add_rms_norm_non_contiguous_and_mismatched():
    x = make((8, 6), torch.float32).t()
    residual = make((6, 16), torch.float32)[:, ::2]
    w = make((8,), torch.float32)
    y, h = flag_gems.add_rms_norm(x, residual, (8,), w)
    assert_close(h, (x + residual).double(), torch.float32)
    assert_close(y, rms_reference(h, (8,), w, 1e-5), torch.float32)
    # a residual of another dtype: the unfused composition, with its promotion
    y, h = flag_gems.add_rms_norm(x, residual.double(), (8,), w)
    assert h.dtype == torch.float64
    assert_close(y, F.rms_norm(x.double() + residual.double(), (8,), w.double(), 1e-5), torch.float64)


@pytest.mark.parametrize("use_sum", [True, False], ids=["sum used", "sum unused"])
def test_add_rms_norm_autograd(use_sum):
    shape = pick((4, 12), (256, 1024))
    x0, r0 = make(shape, torch.float64).requires_grad_(), make(shape, torch.float64).requires_grad_()
    w = make(shape[-1:], torch.float64).requires_grad_()
    gy, gr = make(shape, torch.float64), make(shape, torch.float64)

    def run(fused):
        x, residual = x0 * 1.5, r0 * 0.5
        if fused:
            y, h = flag_gems.add_rms_norm(x, residual, shape[-1:], w)
        else:
            h = x + residual
            y = F.rms_norm(h, shape[-1:], w, 1e-5)
        loss = (y * gy).sum() + ((h * gr).sum() if use_sum else 0)
        return torch.autograd.grad(loss, (x0, r0, w))

    for mine, exact in zip(run(True), run(False)):
        assert_close(mine, exact, torch.float64, reduce_dim=shape[0])


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", [pick((5, 33), (512, 4096)), pick((2, 40000), (4, 70000))], ids=str)
def test_skip_layer_norm(dtype, shape):
    x, residual = make(shape, dtype), make(shape, dtype)
    w, b = params(shape[-1:], dtype)
    h = (x + residual).double()  # rounded to dtype first, as the unfused add is
    # The interpreter truncates h and y to bf16 where the GPU rounds them: an ulp more of each.
    slack = 300 if dtype == torch.bfloat16 and not ON_GPU else 1
    expected = torch.native_layer_norm(h, shape[-1:], w.double(), b.double(), 1e-5)[0]
    assert_close(flag_gems.skip_layer_norm(x, residual, shape[-1:], w, b), expected, dtype, reduce_dim=slack)
    assert_close(flag_gems.ops.skip_layer_norm(x, residual, shape[-1], w),
                 torch.native_layer_norm(h, shape[-1:], w.double(), None, 1e-5)[0], dtype, reduce_dim=slack)


def test_skip_layer_norm_gradcheck():
    x, residual = make((3, 5), torch.float64).requires_grad_(), make((3, 5), torch.float64).requires_grad_()
    w, b = (t.requires_grad_() for t in params((5,), torch.float64))
    assert torch.autograd.gradcheck(lambda *t: flag_gems.skip_layer_norm(t[0], t[1], (5,), t[2], t[3]),
                                    (x, residual, w, b))


@pytest.mark.filterwarnings("ignore:Mismatch dtype")  # torch's own, for the mixed-dtype call
def test_fused_functions_fall_back_on_unsupported_input():
    x = make((4, 6), torch.float32)
    w64 = make((6,), torch.float64)
    assert_close(flag_gems.rms_norm(x, (6,), w64), F.rms_norm(x, (6,), w64), torch.float32)
    with pytest.raises(RuntimeError):
        flag_gems.rms_norm(x, (5,))
    with pytest.raises(RuntimeError):
        flag_gems.skip_layer_norm(x, make((4, 6), torch.float32), (5,))


def test_rms_norm_module():
    from flag_gems.modules import GemsRMSNorm

    norm = GemsRMSNorm(16, eps=1e-6).to(DEVICE)
    with torch.no_grad():
        norm.weight.copy_(make((16,), torch.float32))
    x, residual = make((3, 16), torch.float32), make((3, 16), torch.float32)
    assert_close(norm(x), rms_reference(x, (16,), norm.weight, 1e-6), torch.float32)
    h = (x + residual).double()
    out, new_residual = norm(x, residual)
    assert_close(new_residual, h, torch.float32)
    assert_close(out, rms_reference(h, (16,), norm.weight, 1e-6), torch.float32)
