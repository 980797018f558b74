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
#include <string>
#include <unordered_map>
#include <vector>

#include "cuda_launch.h"

namespace {

using flag_gems::aligned16;
using flag_gems::CUfunction;
using flag_gems::CUstream;
using flag_gems::launch_kernel;

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
  kernels()[key_of(op, pattern, dtype, aligned, numel_by_16, size_class(size))] =
      Compiled{reinterpret_cast<CUfunction>(function), static_cast<unsigned>(threads),
               static_cast<unsigned>(shared), block, result};
}

// The tuners forgot their choices (another mode, another cache): Python teaches us again.
void clear_kernels() {
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
  if (n < 2 || n >= (int64_t{1} << 31) || !plain(a)) return c10::nullopt;
  for (const at::Tensor* t : inputs) {
    if (t->scalar_type() != a.scalar_type() || t->device() != a.device() || !t->sizes().equals(a.sizes()) ||
        !plain(*t)) {
      return c10::nullopt;
    }
  }
  bool aligned = true;
  for (const at::Tensor* t : inputs) aligned = aligned && aligned16(*t);
  // A fresh allocation is aligned, so the inputs decide which kernel applies.
  auto found = kernels().find(key_of(op, pattern, a.scalar_type(), aligned, n % 16 == 0, size_class(n)));
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
  const unsigned grid = static_cast<unsigned>((n + kernel.block - 1) / kernel.block);
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

// ---- routes

// One routed overload: its leading ``operands`` go to the kernel of Pointwise
// ``op`` (tensors, or a tensor and a float where ``floats``); the arguments
// after them must equal ``defaults``; ``alpha`` is the int the kernel takes
// after the tensors.
struct Route {
  Route(int64_t op, int64_t operands, std::vector<c10::IValue> defaults, c10::optional<int64_t> alpha,
        bool floats, c10::SafeKernelFunction python)
      : op(op), operands(operands), defaults(std::move(defaults)), alpha(alpha), floats(floats),
        python(std::move(python)) {}
  const int64_t op;
  const int64_t operands;
  const std::vector<c10::IValue> defaults;
  const c10::optional<int64_t> alpha;
  const bool floats;
  const c10::SafeKernelFunction python;  // the Python router this route was registered over
  std::atomic<bool> enabled{false};  // the row is on and nothing is being recorded
};

std::vector<std::unique_ptr<Route>>& routes() {
  static std::vector<std::unique_ptr<Route>> table;
  return table;
}

std::atomic<int64_t> routed{0};  // calls the routes launched themselves

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

c10::optional<at::Tensor> route_call(const Route& route, const torch::jit::Stack& stack, size_t first) {
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

class RouteKernel final : public c10::OperatorKernel {
 public:
  explicit RouteKernel(const Route* route) : route_(route) {}

  void operator()(const c10::OperatorHandle& op, c10::DispatchKeySet keys, torch::jit::Stack* stack) {
    if (route_->enabled.load(std::memory_order_relaxed)) {
      const size_t arguments = op.schema().arguments().size();
      c10::optional<at::Tensor> result = route_call(*route_, *stack, stack->size() - arguments);
      if (result.has_value()) {
        torch::jit::drop(*stack, arguments);
        stack->emplace_back(std::move(*result));
        routed.fetch_add(1, std::memory_order_relaxed);
        return;
      }
    }
    route_->python.callBoxed(op, keys, stack);
  }

 private:
  const Route* route_;
};

torch::Library& route_library() {
  static torch::Library library(torch::Library::IMPL, "aten", c10::DispatchKey::CUDA, __FILE__, __LINE__);
  return library;
}

class Quiet final : public c10::WarningHandler {
  void process(const c10::Warning&) override {}
};

// Register a route for ``name`` over the kernel now on the CUDA key (flag_gems'
// Python router). ``defaults`` are "i:<int>", "b:<0|1>", "s:<text>" or "n:".
// Returns the route's index for set_routes.
int64_t install_route(const std::string& name, int64_t op, int64_t operands,
                      const std::vector<std::string>& defaults, c10::optional<int64_t> alpha, bool floats) {
  const auto dot = name.find('.');
  const std::string base = name.substr(0, dot);
  const std::string overload = dot == std::string::npos ? "" : name.substr(dot + 1);
  const c10::OperatorHandle handle = c10::Dispatcher::singleton().findSchemaOrThrow(
      ("aten::" + base).c_str(), overload.c_str());
  std::vector<c10::IValue> values;
  for (const std::string& text : defaults) {
    const std::string rest = text.substr(2);
    switch (text[0]) {
      case 'i': values.emplace_back(static_cast<int64_t>(std::stoll(rest))); break;
      case 'b': values.emplace_back(rest == "1"); break;
      case 's': values.emplace_back(rest); break;
      default: values.emplace_back(); break;
    }
  }
  routes().push_back(std::make_unique<Route>(op, operands, std::move(values), alpha, floats,
                                             handle.getComputedKernelForDispatchKey(c10::DispatchKey::CUDA)));
  const Route* route = routes().back().get();
  Quiet quiet;  // PyTorch warns that we override a kernel: that is the point
  c10::WarningUtils::WarningHandlerGuard guard(&quiet);
  route_library().impl(name.c_str(), torch::CppFunction::makeFromBoxedFunctor(std::make_unique<RouteKernel>(route)));
  return static_cast<int64_t>(routes().size()) - 1;
}

// enabled[i]: whether route i may launch kernels itself.
void set_routes(const std::vector<bool>& enabled) {
  for (size_t i = 0; i < enabled.size() && i < routes().size(); ++i) {
    routes()[i]->enabled.store(enabled[i], std::memory_order_relaxed);
  }
}

int64_t routed_calls() {
  return routed.load(std::memory_order_relaxed);
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("register_kernel", &register_kernel, "register a compiled flat pointwise kernel");
  m.def("clear_kernels", &clear_kernels, "forget every registered kernel");
  m.def("unary", &unary, "launch a registered unary kernel, or return None");
  m.def("binary", &binary, "launch a registered binary kernel, or return None");
  m.def("tensor_float", &tensor_float, "launch a registered tensor-and-float kernel, or return None");
  m.def("install_route", &install_route, "route an aten overload through C++ first");
  m.def("set_routes", &set_routes, "switch the routes' own launches on or off");
  m.def("routed_calls", &routed_calls, "calls the routes launched themselves");
  flag_gems::define_kernel_backward(m);
}
