import time, cProfile, pstats, io, torch, triton, flag_gems
from flag_gems.ops import arith_ops as A
from flag_gems.codegen import launch
dev = flag_gems.device
a = torch.randn(1024, device=dev); b = torch.randn_like(a); out = torch.empty_like(a)
def wall(fn, n=3000):
    for _ in range(100): fn()
    torch.cuda.synchronize(); t = time.perf_counter()
    for _ in range(n): fn()
    torch.cuda.synchronize(); return (time.perf_counter() - t) / n * 1e6
flag_gems.enable()
torch.add(a, b)  # first routed call: compiles the kernel and teaches the C++ wrappers
flag_gems.disable()
print("C++ wrappers in use:", A.ADD._fast is not None)
L = A.ADD._launcher("TTS", None)
cases = {
  "native torch.add": lambda: torch.add(a, b),
  "torch.empty": lambda: torch.empty((1024,), dtype=torch.float32, device=dev),
  "empty_like": lambda: torch.empty_like(a),
  "current_device": lambda: torch.cuda.current_device(),
  "knobs hook read": lambda: triton.knobs.runtime.launch_enter_hook,
  "Launcher direct": lambda: L((1,), a, b, 1, out, 1024, BLOCK=1024, COMPUTE=triton.language.float32, OUT_BOOL=False, INDEX64=False, num_warps=4),
  "Pointwise ADD(out,...)": lambda: A.ADD(out, torch.float32, a, b, 1),
  "_add_unsupported": lambda: A._add_unsupported(a, b),
  "impl add": lambda: A.add(a, b),
  "ops.add explicit": lambda: flag_gems.ops.add(a, b),
  "ADD.fast (C++)": lambda: A.ADD.fast(a, b, 1),
}
for name, fn in cases.items():
    print(f"{name:28} {wall(fn):7.2f} us")
flag_gems.enable()
print(f"{'routed torch.add':28} {wall(lambda: torch.add(a, b)):7.2f} us")
flag_gems.enable(unused=["add"])
print(f"{'inactive row (fallback)':28} {wall(lambda: torch.add(a, b)):7.2f} us")
flag_gems.enable()
pr = cProfile.Profile(); pr.enable()
for _ in range(3000): torch.add(a, b)
pr.disable(); torch.cuda.synchronize()
s = io.StringIO(); pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(18); print(s.getvalue()[:5000])
flag_gems.disable()
from flag_gems.ops import matmul_ops
for tf32 in (True,):
    torch.backends.cuda.matmul.allow_tf32 = tf32
    x = torch.randn(4096, 4096, device=dev); wk = torch.randn(4096, 4096, device=dev).t()
    t0 = triton.testing.do_bench(lambda: torch.mm(x, wk), return_mode="median")
    t1 = triton.testing.do_bench(lambda: matmul_ops.mm(x, wk), return_mode="median")
    print(f"tf32 mm with K-major B: torch {2*4096**3/t0/1e9:.0f} ours {2*4096**3/t1/1e9:.0f} TFLOP/s")
