import time, sys, torch, triton, flag_gems
from flag_gems.ops import matmul_ops
dev = "cuda"
def bench(fn): return triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median")
def wall(fn, n=2000):
    for _ in range(50): fn()
    torch.cuda.synchronize(); t = time.perf_counter()
    for _ in range(n): fn()
    torch.cuda.synchronize(); return (time.perf_counter() - t) / n * 1e6
print(torch.cuda.get_device_name(), torch.__version__, triton.__version__)
# add
for dt in (torch.bfloat16, torch.float32):
    a = torch.randn(64 << 20, device=dev, dtype=dt); b = torch.randn_like(a)
    t0 = bench(lambda: torch.add(a, b))
    with flag_gems.use_gems(): t1 = bench(lambda: torch.add(a, b))
    gb = 3 * a.numel() * a.element_size() / 1e9
    print(f"add {dt} 64M: torch {gb/t0:.0f} GB/s ours {gb/t1:.0f} GB/s ratio {t0/t1:.3f}")
x = torch.randn(1024, device=dev); y = torch.randn_like(x)
w0 = wall(lambda: torch.add(x, y))
with flag_gems.use_gems(): w1 = wall(lambda: torch.add(x, y))
print(f"add 1k wall: torch {w0:.1f} us ours {w1:.1f} us ratio {w1/w0:.2f}")
with flag_gems.use_gems(): w2 = wall(lambda: flag_gems.ops.add(x, y))
print(f"explicit ops.add 1k wall {w2:.1f} us")
# softmax
s = torch.randn(16384, 4096, device=dev, dtype=torch.bfloat16)
t0 = bench(lambda: torch.softmax(s, -1))
with flag_gems.use_gems(): t1 = bench(lambda: torch.softmax(s, -1))
gb = 2 * s.numel() * 2 / 1e9
print(f"softmax bf16 16384x4096: torch {gb/t0:.0f} GB/s ours {gb/t1:.0f} GB/s speedup {t0/t1:.2f}")
# mm sweep
a = torch.randn(4096, 4096, device=dev, dtype=torch.bfloat16); b = torch.randn_like(a)
t0 = bench(lambda: torch.mm(a, b)); fl = 2 * 4096**3 / 1e12
print(f"mm torch {fl/t0*1e3:.0f} TFLOP/s")
for cfg in [(128,256,64,8,8,3), (128,256,64,8,8,4), (256,128,64,8,8,3), (128,128,64,8,8,4), (128,128,64,8,4,4),
            (128,256,32,8,8,4), (128,128,128,8,8,3), (256,128,64,8,8,4), (128, 256, 64, 16, 8, 3)]:
    matmul_ops.default_config = lambda M, N, K, dtype, cfg=cfg: cfg
    try:
        r = matmul_ops.mm(a, b)
        t1 = bench(lambda: matmul_ops.mm(a, b))
        err = (r.float() - torch.mm(a, b).float()).abs().max().item()
        print(f"mm cfg {cfg}: {fl/t1*1e3:.0f} TFLOP/s ratio {t0/t1:.3f} err {err:.3f}")
    except Exception as e:
        print("cfg", cfg, "failed", type(e).__name__, str(e)[:100])
