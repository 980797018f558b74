import torch, triton, flag_gems
from flag_gems.ops import matmul_ops, reduction_ops
dev = "cuda"
def bench(fn): return triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median")
# sum over dim 0 of 4096x8192 fp32
x = torch.randn(4096, 8192, device=dev)
t0 = bench(lambda: x.sum(0)); gb = x.numel() * 4 / 1e9
print(f"sum dim0 torch {gb/t0:.0f} GB/s")
for cfg in [(16, 256, 4, 4), (16, 256, 4, 8), (32, 128, 4, 4), (8, 512, 4, 4), (16, 256, 8, 4), (32, 256, 8, 4), (64, 64, 4, 4), (16, 128, 4, 4)]:
    reduction_ops.cols_config = lambda A, N, K, sk, cfg=cfg: cfg
    r = reduction_ops.sum_dim(x, 0); err = (r - x.sum(0)).abs().max().item()
    t1 = bench(lambda: reduction_ops.sum_dim(x, 0))
    print(f"sum dim0 cfg {cfg}: {gb/t1:.0f} GB/s ratio {t0/t1:.2f} err {err:.1e}")
# small and decode mm
for (M, N, K) in [(1024, 1024, 1024), (16, 4096, 4096), (8192, 8192, 8192)]:
    a = torch.randn(M, K, device=dev, dtype=torch.bfloat16); b = torch.randn(K, N, device=dev, dtype=torch.bfloat16)
    t0 = bench(lambda: torch.mm(a, b)); fl = 2 * M * N * K / 1e12
    print(f"mm {M}x{N}x{K} torch {fl/t0*1e3:.0f} TFLOP/s {t0*1e3:.1f} us")
    cfgs = {1024: [(128,128,64,8,4,4), (64,128,64,8,4,4), (128,64,64,8,4,4), (64,64,64,8,4,4), (128,128,64,8,8,3), (64,128,128,8,4,3)],
            16: [(16,64,128,1,4,4), (16,32,128,1,4,4), (16,32,256,1,4,3), (16,64,256,1,4,3), (16,128,128,1,4,4), (32,32,128,1,4,4)],
            8192: [(128,256,64,8,8,3), (128,256,64,16,8,3), (128,256,64,4,8,3), (256,128,64,8,8,3)]}[M if M != 8192 else 8192]
    for cfg in cfgs:
        matmul_ops.default_config = lambda M, N, K, dtype, cfg=cfg: cfg
        try:
            r = matmul_ops.mm(a, b); t1 = bench(lambda: matmul_ops.mm(a, b))
            err = (r.float() - torch.mm(a, b).float()).abs().max().item()
            print(f"  cfg {cfg}: {fl/t1*1e3:.0f} TFLOP/s {t1*1e3:.1f} us ratio {t0/t1:.2f} err {err:.2f}")
        except Exception as e:
            print("  cfg", cfg, "failed", type(e).__name__)
