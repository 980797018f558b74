// Launch already-compiled Triton pointwise kernels from C++, for the calls
// that dominate small-tensor workloads: two contiguous tensors of one float
// dtype and one shape. Python compiles each kernel once (through Triton) and
// hands us its CUfunction; from then on a call costs one output allocation
// and one cuLaunchKernel, with no Python in between.
//
// Triton's kernel parameters are its non-constexpr arguments in order,
// followed by two scratch pointers (global, profile); we only register
// kernels that need no scratch, so both are null.

#include <torch/extension.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <dlfcn.h>

#include <cstdint>
#include <unordered_map>

namespace {

using CUfunction = void*;
using CUstream = void*;
using LaunchKernel = int (*)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                             unsigned, CUstream, void**, void**);

LaunchKernel launch_kernel() {
  static LaunchKernel launch = [] {
    void* cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (cuda == nullptr) cuda = dlopen("libcuda.so.1", RTLD_NOW);
    return cuda ? reinterpret_cast<LaunchKernel>(dlsym(cuda, "cuLaunchKernel")) : nullptr;
  }();
  return launch;
}

struct Compiled {
  CUfunction function;
  unsigned threads;
  unsigned shared;
};

// What Triton specialised the kernel on, besides the operator and block size.
uint64_t key_of(int64_t op, at::ScalarType dtype, bool aligned, bool numel_by_16, int64_t block) {
  return (static_cast<uint64_t>(op) << 40) | (static_cast<uint64_t>(dtype) << 24) |
         (static_cast<uint64_t>(aligned) << 23) | (static_cast<uint64_t>(numel_by_16) << 22) |
         static_cast<uint64_t>(block);
}

std::unordered_map<uint64_t, Compiled>& kernels() {
  static std::unordered_map<uint64_t, Compiled> table;
  return table;
}

// Must match flag_gems.codegen.pointwise.flat_block.
int64_t flat_block(int64_t n) {
  if (n > 1024) return 2048;
  int64_t block = 128;
  while (block < n) block *= 2;
  return block;
}

bool aligned16(const at::Tensor& t) {
  return reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0;
}

void register_kernel(int64_t op, at::ScalarType dtype, bool aligned, bool numel_by_16, int64_t block,
                     int64_t function, int64_t threads, int64_t shared) {
  kernels()[key_of(op, dtype, aligned, numel_by_16, block)] =
      Compiled{reinterpret_cast<CUfunction>(function), static_cast<unsigned>(threads),
               static_cast<unsigned>(shared)};
}

// ``a (op) b`` with an optional int32 scalar operand after them (add/sub's
// alpha), or nullopt when no kernel is registered for this case: the caller
// then takes the general path, which compiles and registers one.
c10::optional<at::Tensor> binary(int64_t op, const at::Tensor& a, const at::Tensor& b,
                                 c10::optional<int64_t> scalar) {
  const int64_t n = a.numel();
  if (!a.is_cuda() || !b.is_cuda() || a.device() != b.device() || a.scalar_type() != b.scalar_type() ||
      n < 2 || n >= (int64_t{1} << 31) || !a.sizes().equals(b.sizes()) || !a.is_contiguous() ||
      !b.is_contiguous() || a.is_conj() || b.is_conj() || a.is_neg() || b.is_neg()) {
    return c10::nullopt;
  }
  if (scalar.has_value() && (*scalar < INT32_MIN || *scalar > INT32_MAX)) return c10::nullopt;
  const int64_t block = flat_block(n);
  // empty_like keeps a's (contiguous) layout; its pointer is aligned like any fresh allocation.
  at::Tensor out = at::empty_like(a);
  const bool aligned = aligned16(a) && aligned16(b) && aligned16(out);
  auto found = kernels().find(key_of(op, a.scalar_type(), aligned, n % 16 == 0, block));
  if (found == kernels().end() || launch_kernel() == nullptr) return c10::nullopt;
  const Compiled& kernel = found->second;

  c10::cuda::CUDAGuard guard(a.device());
  CUstream stream = c10::cuda::getCurrentCUDAStream(a.get_device()).stream();
  void* pa = a.data_ptr();
  void* pb = b.data_ptr();
  void* pout = out.data_ptr();
  int32_t value = scalar.has_value() ? static_cast<int32_t>(*scalar) : 0;
  int32_t n32 = static_cast<int32_t>(n);
  void* scratch = nullptr;
  void* with_scalar[] = {&pa, &pb, &value, &pout, &n32, &scratch, &scratch};
  void* without_scalar[] = {&pa, &pb, &pout, &n32, &scratch, &scratch};
  const unsigned grid = static_cast<unsigned>((n + block - 1) / block);
  int status = launch_kernel()(kernel.function, grid, 1, 1, kernel.threads, 1, 1, kernel.shared, stream,
                               scalar.has_value() ? with_scalar : without_scalar, nullptr);
  TORCH_CHECK(status == 0, "flag_gems: cuLaunchKernel failed with CUDA error ", status);
  return out;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("register_kernel", &register_kernel, "register a compiled flat pointwise kernel");
  m.def("binary", &binary, "launch a registered binary pointwise kernel, or return None");
}
