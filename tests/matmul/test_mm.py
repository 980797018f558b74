"""mm against PyTorch computed in fp64."""

import pytest
import torch

import flag_gems
from flag_gems.testing import assert_close

from conftest import DEVICE, FLOAT_DTYPES, ON_GPU, make, pick
from matmul_checks import close, our_kernel, ran, reference  # noqa: F401 - our_kernel: autouse fixture

SHAPES = [
    (1, 1, 1), (5, 7, 3), (33, 70, 19), (64, 128, 32),
    pick((17, 129, 65), (1024, 1024, 1024)),
    pick((16, 64, 48), (16, 4096, 4096)),  # decode-shaped
    pick((70, 33, 9), (4096, 4096, 4096)),
    pick((3, 200, 5), (127, 4093, 255)),  # odd sizes: masked edges
]


def check(a, b, **kwargs):
    native = torch.mm(a, b)
    with flag_gems.use_gems():
        ours = torch.mm(a, b, **kwargs)
    assert ours.dtype == native.dtype and ours.shape == native.shape
    close(ours, a.double() @ b.double(), a.shape[1])
    return ours


@pytest.mark.parametrize("m, k, n", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_mm(m, k, n, dtype):
    check(make((m, k), dtype), make((k, n), dtype))


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_mm_layouts(dtype):
    m, k, n = pick((9, 20, 11), (512, 768, 256))
    a, b = make((m, k), dtype), make((k, n), dtype)
    check(a, b)
    check(make((k, m), dtype).t(), b)  # transposed A
    check(a, make((n, k), dtype).t())  # transposed B (nn.Linear's weight)
    check(make((k, m), dtype).t(), make((n, k), dtype).t())
    check(make((m, 2 * k), dtype)[:, ::2], b)  # strided columns
    check(make((m, k + 3), dtype)[:, :k], b)  # padded rows


def test_mm_empty_and_zero_k():
    for (m, k, n) in [(0, 4, 3), (3, 4, 0), (3, 0, 4)]:
        a, b = make((m, k), torch.float32), make((k, n), torch.float32)
        with flag_gems.use_gems():
            ours = torch.mm(a, b)
        torch.testing.assert_close(ours, torch.mm(a, b))


@pytest.mark.skipif(not ON_GPU, reason="TF32 exists only on the GPU")
def test_mm_tf32_follows_torch_flag(tmp_path):
    a, b = make((512, 512), torch.float32), make((512, 512), torch.float32)
    weight = make((512, 512), torch.float32).t()  # K-major, as nn.Linear passes it
    previous = torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = False
        with flag_gems.use_gems():
            strict = torch.mm(a, b)
        assert_close(strict, a.double() @ b.double(), torch.float32, reduce_dim=512)
        torch.backends.cuda.matmul.allow_tf32 = True
        log = tmp_path / "tf32.log"
        with flag_gems.use_gems(record=True, path=str(log)):
            fast = torch.mm(a, weight)
            row_major = torch.mm(a, b)
        error = (fast.double() - a.double() @ weight.double()).abs().max().item()
        assert 1e-5 < error < 0.1  # tf32 rounds its inputs: measurably less exact, still close
        # A row-major mat2 under TF32 runs faster natively: it is declined, and says so.
        torch.testing.assert_close(row_major, torch.mm(a, b), rtol=0, atol=0)
        assert "native (tf32 with a row-major mat2 is faster natively)" in log.read_text()
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous


def test_mm_out():
    a, b = make((6, 8), torch.float32), make((8, 5), torch.float32)
    out = torch.empty(5, 6, device=DEVICE).t()
    with flag_gems.use_gems():
        returned = torch.mm(a, b, out=out)
    assert returned is out
    assert_close(out, a.double() @ b.double(), torch.float32, reduce_dim=8)


def test_mm_autograd_and_linear():
    x = make((8, 16), torch.float64).requires_grad_()
    w = make((4, 16), torch.float64).requires_grad_()
    native = torch.autograd.grad(torch.nn.functional.linear(x, w).pow(2).sum(), (x, w))
    with flag_gems.use_gems():
        ours = torch.autograd.grad(torch.nn.functional.linear(x, w).pow(2).sum(), (x, w))
    for mine, theirs in zip(ours, native):
        assert_close(mine, theirs, torch.float64, reduce_dim=16)


def test_mm_errors_and_fallbacks():
    with flag_gems.use_gems():
        with pytest.raises(RuntimeError):
            torch.mm(make((3, 4), torch.float32), make((5, 6), torch.float32))
        with pytest.raises(RuntimeError):
            torch.mm(make((3, 4), torch.float32), make((4, 6), torch.float64))
        ints = make((3, 4), torch.int64)
        if not ON_GPU:  # torch has an integer mm on CPU only: it runs natively
            torch.testing.assert_close(torch.mm(ints, ints.t()), ints @ ints.t())


FAMILY = {  # every operator of the matmul family: (aten name, call)
    "mm": lambda: torch.mm(make((3, 4), torch.float32), make((4, 5), torch.float32)),
    "addmm": lambda: torch.addmm(make((5,), torch.float32), make((3, 4), torch.float32), make((4, 5), torch.float32)),
    "addr": lambda: torch.addr(make((3, 5), torch.float32), make((3,), torch.float32), make((5,), torch.float32)),
    "bmm": lambda: torch.bmm(make((2, 3, 4), torch.float32), make((2, 4, 5), torch.float32)),
    "baddbmm": lambda: torch.baddbmm(make((5,), torch.float32), make((2, 3, 4), torch.float32),
                                     make((2, 4, 5), torch.float32)),
    "mv": lambda: torch.mv(make((3, 4), torch.float32), make((4,), torch.float32)),
    "addmv": lambda: torch.addmv(make((3,), torch.float32), make((3, 4), torch.float32), make((4,), torch.float32)),
    "dot": lambda: torch.dot(make((4,), torch.float32), make((4,), torch.float32)),
    "vdot": lambda: torch.vdot(make((4,), torch.float32), make((4,), torch.float32)),
}


@pytest.mark.parametrize("name", FAMILY)
def test_untuned_buckets_run_native(name, monkeypatch):
    """Where PyTorch's kernel is a candidate (GPUs), a bucket with no tuned entry runs it."""
    monkeypatch.setenv("GEMS_TUNE_NATIVE", "1")
    flag_gems.tuning.forget_choices()
    assert ran(name, FAMILY[name])[1] == ["native (no tuned entry wins here)"]
    monkeypatch.setenv("GEMS_TUNE_NATIVE", "0")
    flag_gems.tuning.forget_choices()
    assert ran(name, FAMILY[name])[1] == ["triton"]


@pytest.mark.parametrize("splits", [2, 3, 8])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_split_k_matches_the_product(splits, dtype, monkeypatch):
    """K split across programs (decode-shaped products): partial products summed before
    the epilogue, whatever K's remainder, with alpha, beta and a broadcast bias."""
    monkeypatch.setitem(flag_gems.runtime.selected_vendor().configs, "mm",
                        lambda M, N, K, dtype: (16, 32, 16, 1, 4, 2, splits))
    flag_gems.tuning.forget_choices()
    m, n = pick((3, 40), (8, 4096))
    for k in pick((16 * splits * 2, 16 * splits * 2 + 5, 100), (4096, 4096 + 40, 14336)):
        a, b = make((m, k), dtype), make((n, k), dtype).t()  # nn.Linear's transposed weight
        with flag_gems.use_gems():
            close(torch.mm(a, b), a.double() @ b.double(), k)
            bias = make((n,), dtype)
            close(torch.addmm(bias, a, b, beta=0.5, alpha=2.0), reference(bias, a, b, 0.5, 2.0), k)
    flag_gems.tuning.forget_choices()
