// Launch already-compiled Triton pointwise kernels from C++, for the calls
// that dominate small-tensor workloads: contiguous tensors of one dtype and
// one shape, optionally with one number. Python compiles each kernel once
// (through Triton) and hands us its CUfunction with the block size its tuner
// chose for the call's size class (numel rounded up to a power of two); from
// then on a call costs one output allocation and one cuLaunchKernel, with no
// Python in between.
//
// Triton's kernel parameters are its non-constexpr arguments in order,
// followed by two scratch pointers (global, profile); we only register
// kernels that need no scratch, so both are null.
//
// The hottest overloads also get a C++ *route*: a boxed kernel registered on
// the CUDA key over flag_gems' Python router. It launches a registered kernel
// when the call is one of those above and hands every other call, unchanged,
// to the Python router it replaced, which decides as before. That saves the
// ~7 us PyTorch spends entering a Python kernel.

#include <torch/extension.h>
#include <torch/library.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "cuda_launch.h"
#include "routes.h"

namespace flag_gems {
namespace {

struct Compiled {
  CUfunction function;
  unsigned threads;
  unsigned shared;
  int64_t block;  // elements per program: the config the tuner chose for this size class
  at::ScalarType result;
};

// The operand patterns we launch (the kernel's leading parameters).
enum Pattern : uint64_t { kUnary = 1, kBinary = 2, kBinaryInt = 3, kTensorFloat = 4 };

// What Triton specialised the kernel on, besides the operator and pattern, and the size
// class its config was chosen for.
uint64_t key_of(int64_t op, int64_t pattern, at::ScalarType dtype, bool aligned, bool numel_by_16,
                int64_t size_class) {
  return (static_cast<uint64_t>(op) << 44) | (static_cast<uint64_t>(pattern) << 40) |
         (static_cast<uint64_t>(dtype) << 24) | (static_cast<uint64_t>(aligned) << 23) |
         (static_cast<uint64_t>(numel_by_16) << 22) | static_cast<uint64_t>(size_class);
}

// Python registers kernels (holding the GIL) while routes of other threads look them up
// (without it): the table is read under a shared lock, written under an exclusive one.
std::shared_mutex& kernels_lock() {
  static std::shared_mutex lock;
  return lock;
}

std::unordered_map<uint64_t, Compiled>& kernels() {
  static std::unordered_map<uint64_t, Compiled> table;
  return table;
}

// log2 of n rounded up to a power of two, at least 128 (n >= 1): the size the Python
// side keys its flat configs by (flag_gems.codegen.pointwise, the flat raw key).
int64_t size_class(int64_t n) {
  return 64 - __builtin_clzll(static_cast<uint64_t>(n - 1) | 127);
}

// ``size``: a power of two >= 128, the rounded numel the kernel's ``block`` was chosen for.
void register_kernel(int64_t op, int64_t pattern, at::ScalarType dtype, bool aligned, bool numel_by_16,
                     int64_t size, int64_t block, int64_t function, int64_t threads, int64_t shared,
                     at::ScalarType result) {
  std::unique_lock<std::shared_mutex> lock(kernels_lock());
  kernels()[key_of(op, pattern, dtype, aligned, numel_by_16, size_class(size))] =
      Compiled{reinterpret_cast<CUfunction>(function), static_cast<unsigned>(threads),
               static_cast<unsigned>(shared), block, result};
}

// The tuners forgot their choices (another mode, another cache): Python teaches us again.
void clear_kernels() {
  std::unique_lock<std::shared_mutex> lock(kernels_lock());
  kernels().clear();
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
  if (planning_now() || n < 2 || n >= (int64_t{1} << 31) || !plain(a)) return c10::nullopt;
  for (const at::Tensor* t : inputs) {
    if (t->scalar_type() != a.scalar_type() || t->device() != a.device() || !t->sizes().equals(a.sizes()) ||
        !plain(*t)) {
      return c10::nullopt;
    }
  }
  bool aligned = true;
  for (const at::Tensor* t : inputs) aligned = aligned && aligned16(*t);
  // A fresh allocation is aligned, so the inputs decide which kernel applies.
  Compiled kernel;
  {
    std::shared_lock<std::shared_mutex> lock(kernels_lock());
    auto found = kernels().find(key_of(op, pattern, a.scalar_type(), aligned, n % 16 == 0, size_class(n)));
    if (found == kernels().end() || launch_kernel() == nullptr) return c10::nullopt;
    kernel = found->second;
  }

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
  const unsigned grid = static_cast<unsigned>((n + kernel.block - 1) / kernel.block);
  TORCH_CHECK(ensure_context(a.get_device()), "flag_gems: no CUDA context for the launch");
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

// ---- a route's pointwise share

bool same_value(const c10::IValue& given, const c10::IValue& expected) {
  if (expected.isInt()) return given.isInt() && given.toInt() == expected.toInt();
  if (expected.isBool()) return given.isBool() && given.toBool() == expected.toBool();
  if (expected.isString()) return given.isString() && given.toStringRef() == expected.toStringRef();
  return expected.isNone() && given.isNone();
}

// A float operand as the Python router sees it: a Python float, wrapped or not.
c10::optional<double> float_operand(const c10::IValue& value) {
  if (value.isDouble()) return value.toDouble();
  if (value.isTensor()) {
    const at::Tensor& t = value.toTensor();
    if (t.unsafeGetTensorImpl()->is_wrapped_number() && t.scalar_type() == at::kDouble && t.is_cpu()) {
      return *t.const_data_ptr<double>();  // not item(): that is another dispatched call
    }
  }
  return c10::nullopt;
}

}  // namespace

c10::optional<at::Tensor> launch_pointwise_route(const PointwiseRoute& route, const torch::jit::Stack& stack,
                                                  size_t first) {
  if (route.op < 0) return c10::nullopt;
  for (size_t i = 0; i < route.defaults.size(); ++i) {
    if (!same_value(stack[first + route.operands + i], route.defaults[i])) return c10::nullopt;
  }
  const c10::IValue& self = stack[first];
  if (!self.isTensor()) return c10::nullopt;
  if (route.operands == 1) return unary(route.op, self.toTensor());
  const c10::IValue& other = stack[first + 1];
  if (other.isTensor() && !other.toTensor().unsafeGetTensorImpl()->is_wrapped_number()) {
    return binary(route.op, self.toTensor(), other.toTensor(), route.alpha);
  }
  if (!route.floats || route.alpha.has_value()) return c10::nullopt;
  const c10::optional<double> number = float_operand(other);
  if (number.has_value()) return tensor_float(route.op, self.toTensor(), *number);
  return c10::nullopt;
}

void define_pointwise(pybind11::module& m) {
  m.def("register_kernel", &register_kernel, "register a compiled flat pointwise kernel");
  m.def("clear_kernels", &clear_kernels, "forget every registered kernel");
  m.def("unary", &unary, "launch a registered unary kernel, or return None");
  m.def("binary", &binary, "launch a registered binary kernel, or return None");
  m.def("tensor_float", &tensor_float, "launch a registered tensor-and-float kernel, or return None");
}

}  // namespace flag_gems

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  flag_gems::define_pointwise(m);
  flag_gems::define_routes(m);
  flag_gems::define_kernel_backward(m);
}
