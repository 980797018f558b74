"""Losses: negative log-likelihood (nll.py), the elementwise losses (elementwise_loss.py)
and the fused cross entropy (cross_entropy.py, its kernels in cross_entropy_kernels.py);
what they share is in common.py.

``kl_div``, ``l1_loss``, ``cross_entropy_loss`` and ``nll_loss(_nd)`` are
CompositeImplicitAutograd in aten: they decompose into the rows here and other
operators (``_log_softmax``, ``mul``, ``sum``...), ours or native."""
