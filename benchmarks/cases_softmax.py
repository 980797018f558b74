"""Softmax and log-softmax forward and backward: memory-bound, reported in GB/s."""

import torch

from harness import Case, randn


def _grad_and_output(shapes, dtype, device, forward=torch.softmax):
    """A random gradient and a real (log-)softmax output."""
    grad = randn(shapes[0], dtype, device)
    output = forward(randn(shapes[1], dtype, device), dim=-1)
    return grad, output


def _backward(grad, output):
    return torch.ops.aten._softmax_backward_data(grad, output, -1, grad.dtype)


def _log_backward(grad, output):
    return torch.ops.aten._log_softmax_backward_data(grad, output, -1, grad.dtype)


CASES = [
    Case("softmax_lastdim_bf16", torch.bfloat16, ((16384, 4096),), ((64, 128),), lambda x: torch.softmax(x, dim=-1)),
    Case("softmax_wide_bf16", torch.bfloat16, ((4096, 32768),), ((4, 32768),), lambda x: torch.softmax(x, dim=-1)),
    Case("softmax_dim0_fp32", torch.float32, ((4096, 4096),), ((64, 64),), lambda x: torch.softmax(x, dim=0)),
    Case("softmax_backward_bf16", torch.bfloat16, ((16384, 4096), (16384, 4096)), ((64, 128), (64, 128)), _backward,
         make=_grad_and_output),
    Case("softmax_tiny_bf16", torch.bfloat16, ((1024,),), ((1024,),), lambda x: torch.softmax(x, dim=-1)),
    Case("log_softmax_lastdim_bf16", torch.bfloat16, ((16384, 4096),), ((64, 128),),
         lambda x: torch.log_softmax(x, dim=-1)),
    Case("log_softmax_backward_bf16", torch.bfloat16, ((16384, 4096), (16384, 4096)), ((64, 128), (64, 128)),
         _log_backward, make=lambda shapes, dtype, device: _grad_and_output(shapes, dtype, device, torch.log_softmax)),
]
