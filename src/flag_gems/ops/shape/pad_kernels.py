"""The backward of the reflection and replication pads: each input element gathers the
sum of the output gradients its value was copied to.

The input is read as [N, C, D, H, W] (missing dims of size 1) in tiles of rows (N, C,
D, H) x W. Along a padded dim an input position x was copied to a few output
positions, visited in increasing order (as PyTorch's CPU kernel adds them):
reflected, it is the left mirror ``pad - x``, itself ``x + pad`` and the right mirror
``pad + 2 (size - 1) - x``, where each lies in its region; replicated, it is a range:
itself, plus everything left of the output's first column when x is the first input
position and right of its last when x is the last.
"""

import triton
import triton.language as tl

from ...codegen.launch import Launcher
from .gather_kernels import REFLECT

_REFLECT = tl.constexpr(REFLECT)


@triton.jit
def _copied_to(x, t, size, pad, out_size, MODE: tl.constexpr):
    """(position, valid): the t-th output position input position ``x`` was copied to."""
    if MODE == _REFLECT:
        mirror = tl.where(t == 0, pad - x, pad + 2 * (size - 1) - x)
        position = tl.where(t == 1, x + pad, mirror)
        valid = (t == 1) | ((t == 0) & (x > 0)) | ((t == 2) & (x < size - 1))
    else:
        first = tl.where(x == 0, 0, x + pad)
        end = tl.where(x == size - 1, out_size, x + pad + 1)
        position = tl.maximum(first, 0) + t
        valid = position < end
    return position, valid & (position >= 0) & (position < out_size)


@triton.jit
def pad_backward_kernel(grad_out, grad_in, rows, C, D, H, W, D_out, H_out, W_out,
                        go_sn, go_sc, go_sd, go_sh, go_sw, gi_sn, gi_sc, gi_sd, gi_sh, gi_sw,
                        pad_d, pad_h, pad_w, first_d, end_d, first_h, end_h, first_w, end_w,
                        MODE: tl.constexpr, ACC: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr,
                        INDEX64: tl.constexpr):
    """grad_in[n, c, d, h, w] = the sum of grad_out at every position (d, h, w) was copied
    to; along each dim the candidates are t in [first, end)."""
    col_blocks = tl.cdiv(W, BLOCK_C)
    pid = tl.program_id(0)
    if INDEX64:
        pid = pid.to(tl.int64)
    row = (pid // col_blocks) * BLOCK_R + tl.arange(0, BLOCK_R)
    w = (pid % col_blocks) * BLOCK_C + tl.arange(0, BLOCK_C)
    mask = (row < rows)[:, None] & (w < W)[None, :]
    h = row % H
    d = (row // H) % D
    c = (row // (H * D)) % C
    n = row // (H * D * C)
    go_row = n * go_sn + c * go_sc
    acc = tl.zeros([BLOCK_R, BLOCK_C], ACC)
    for td in range(first_d, end_d):
        pd, valid_d = _copied_to(d, td, D, pad_d, D_out, MODE)
        for th in range(first_h, end_h):
            ph, valid_h = _copied_to(h, th, H, pad_h, H_out, MODE)
            at_row = go_row + pd * go_sd + ph * go_sh
            for tw in range(first_w, end_w):
                pw, valid_w = _copied_to(w, tw, W, pad_w, W_out, MODE)
                valid = mask & (valid_d & valid_h)[:, None] & valid_w[None, :]
                at = at_row[:, None] + (pw * go_sw)[None, :]
                acc += tl.load(grad_out + at, mask=valid, other=0).to(ACC)
    out_at = (n * gi_sn + c * gi_sc + d * gi_sd + h * gi_sh)[:, None] + (w * gi_sw)[None, :]
    tl.store(grad_in + out_at, acc.to(grad_in.dtype.element_ty), mask=mask)


PAD_BACKWARD = Launcher(pad_backward_kernel)
