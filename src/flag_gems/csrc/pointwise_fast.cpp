// Launch already-compiled Triton pointwise kernels from C++, for the calls
// that dominate small-tensor workloads: contiguous tensors of one dtype and
// one shape, optionally with one number. Python compiles each kernel once
// (through Triton) and hands us its CUfunction; from then on a call costs one
// output allocation and one cuLaunchKernel, with no Python in between.
//
// Triton's kernel parameters are its non-constexpr arguments in order,
// followed by two scratch pointers (global, profile); we only register
// kernels that need no scratch, so both are null.

#include <torch/extension.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <dlfcn.h>

#include <cstdint>
#include <initializer_list>
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
  at::ScalarType result;
};

// The operand patterns we launch (the kernel's leading parameters).
enum Pattern : uint64_t { kUnary = 1, kBinary = 2, kBinaryInt = 3, kTensorFloat = 4 };

// What Triton specialised the kernel on, besides the operator, pattern and block size.
uint64_t key_of(int64_t op, int64_t pattern, at::ScalarType dtype, bool aligned, bool numel_by_16,
                int64_t block) {
  return (static_cast<uint64_t>(op) << 44) | (static_cast<uint64_t>(pattern) << 40) |
         (static_cast<uint64_t>(dtype) << 24) | (static_cast<uint64_t>(aligned) << 23) |
         (static_cast<uint64_t>(numel_by_16) << 22) | static_cast<uint64_t>(block);
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

void register_kernel(int64_t op, int64_t pattern, at::ScalarType dtype, bool aligned, bool numel_by_16,
                     int64_t block, int64_t function, int64_t threads, int64_t shared, at::ScalarType result) {
  kernels()[key_of(op, pattern, dtype, aligned, numel_by_16, block)] =
      Compiled{reinterpret_cast<CUfunction>(function), static_cast<unsigned>(threads),
               static_cast<unsigned>(shared), result};
}

bool plain(const at::Tensor& t) {
  return t.is_cuda() && t.is_contiguous() && !t.is_conj() && !t.is_neg();
}

// Launch the kernel registered for ``inputs`` (one shape, one dtype, contiguous)
// with ``extra`` as the parameter after them; nullopt when none is registered:
// the caller then takes the general path, which compiles and registers one.
template <typename Extra>
c10::optional<at::Tensor> launch(int64_t op, int64_t pattern, std::initializer_list<const at::Tensor*> inputs,
                                 const Extra* extra) {
  const at::Tensor& a = **inputs.begin();
  const int64_t n = a.numel();
  if (n < 2 || n >= (int64_t{1} << 31) || !plain(a)) return c10::nullopt;
  for (const at::Tensor* t : inputs) {
    if (t->scalar_type() != a.scalar_type() || t->device() != a.device() || !t->sizes().equals(a.sizes()) ||
        !plain(*t)) {
      return c10::nullopt;
    }
  }
  const int64_t block = flat_block(n);
  bool aligned = true;
  for (const at::Tensor* t : inputs) aligned = aligned && aligned16(*t);
  // A fresh allocation is aligned, so the inputs decide which kernel applies.
  auto found = kernels().find(key_of(op, pattern, a.scalar_type(), aligned, n % 16 == 0, block));
  if (found == kernels().end() || launch_kernel() == nullptr) return c10::nullopt;
  const Compiled& kernel = found->second;

  c10::cuda::CUDAGuard guard(a.device());
  at::Tensor out = at::empty_like(a, a.options().dtype(kernel.result));
  void* pointers[4];
  void* params[8];
  int count = 0;
  for (const at::Tensor* t : inputs) {
    pointers[count] = t->data_ptr();
    params[count] = &pointers[count];
    ++count;
  }
  if (extra != nullptr) params[count++] = const_cast<Extra*>(extra);
  void* out_pointer = out.data_ptr();
  int32_t n32 = static_cast<int32_t>(n);
  void* scratch = nullptr;
  params[count++] = &out_pointer;
  params[count++] = &n32;
  params[count++] = &scratch;
  params[count++] = &scratch;
  CUstream stream = c10::cuda::getCurrentCUDAStream(a.get_device()).stream();
  const unsigned grid = static_cast<unsigned>((n + block - 1) / block);
  int status = launch_kernel()(kernel.function, grid, 1, 1, kernel.threads, 1, 1, kernel.shared, stream,
                               params, nullptr);
  TORCH_CHECK(status == 0, "flag_gems: cuLaunchKernel failed with CUDA error ", status);
  return out;
}

c10::optional<at::Tensor> unary(int64_t op, const at::Tensor& a) {
  return launch<int32_t>(op, kUnary, {&a}, nullptr);
}

// ``a (op) b``, with an int32 number after them when ``scalar`` is given (add/sub's alpha).
c10::optional<at::Tensor> binary(int64_t op, const at::Tensor& a, const at::Tensor& b,
                                 c10::optional<int64_t> scalar) {
  if (!scalar.has_value()) return launch<int32_t>(op, kBinary, {&a, &b}, nullptr);
  if (*scalar < INT32_MIN || *scalar > INT32_MAX) return c10::nullopt;
  const int32_t value = static_cast<int32_t>(*scalar);
  return launch(op, kBinaryInt, {&a, &b}, &value);
}

// ``a (op) number``: Triton passes a Python float as fp32.
c10::optional<at::Tensor> tensor_float(int64_t op, const at::Tensor& a, double number) {
  const float value = static_cast<float>(number);
  return launch(op, kTensorFloat, {&a}, &value);
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("register_kernel", &register_kernel, "register a compiled flat pointwise kernel");
  m.def("unary", &unary, "launch a registered unary kernel, or return None");
  m.def("binary", &binary, "launch a registered binary kernel, or return None");
  m.def("tensor_float", &tensor_float, "launch a registered tensor-and-float kernel, or return None");
}
