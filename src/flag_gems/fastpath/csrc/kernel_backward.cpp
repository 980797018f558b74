// A C++ autograd node whose backward is one Triton kernel launch.
//
// A Python autograd.Function's backward runs Python in the autograd engine's
// device thread: taking the GIL there, and the hand-overs around it, cost more
// host time than our fused kernels take on the GPU (measured on the H100 host:
// a trivial Python backward adds ~115 us to torch.autograd.grad). Fused
// functions (flag_gems.cross_entropy_loss) therefore hand their backward to
// this node once Python has compiled its kernel: Python registers the launch
// (a "spec": the CUfunction, grid, and every kernel parameter as a saved
// tensor, the incoming gradient, the result, or a fixed number), and the node
// then launches it with no Python at all.
//
// Calls the spec was not compiled for (a gradient of another dtype, shape or
// alignment, or a backward that builds a graph) go to a Python fallback, which
// computes them as the Python path would.
//
// A node may also hold a result the forward already computed (a "speculated"
// gradient, for an incoming gradient of 1). Its spec then has a "skip" parameter:
// a float the kernel compares with the gradient, doing nothing on a match. The
// node's first covered backward launches into that tensor with skip 1 and returns
// it; later ones get a fresh result and skip NaN (never a match).

#include <torch/extension.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/saved_variable.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <array>
#include <atomic>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "cuda_launch.h"

namespace flag_gems {
namespace {

namespace autograd = torch::autograd;

// An integer fills its whole 8-byte cell: little-endian, that serves narrower ints too.
enum ParamKind : int64_t { kSlot = 0, kInteger = 1, kFloat32 = 2, kSkip = 3 };

// One kernel parameter. Slots number the node's saved tensors first, then the
// incoming gradient, then the result.
struct Param {
  ParamKind kind;
  int64_t value;  // slot or integer
  double number;  // float
};

struct Spec {
  CUfunction function;
  unsigned grid[3];
  unsigned threads;
  unsigned shared;
  std::vector<Param> params;
  bool skips;  // has a kSkip parameter
  at::ScalarType grad_dtype;  // the 0-d gradient the kernel was compiled for
  bool grad_aligned;
};

// Registered once per (plan, kernel), read from the engine's threads: a fixed table
// whose filled entries never change, so readers need no lock.
constexpr int64_t kMaxSpecs = 256;
std::array<std::unique_ptr<Spec>, kMaxSpecs> specs;
std::atomic<int64_t> spec_count{0};

// (spec, grad, *saved) -> result, for calls a spec does not cover. Never freed: it
// may be called until the interpreter exits.
pybind11::object* fallback = nullptr;

// Node pointers are shared_ptr in some PyTorch releases and intrusive_ptr in others.
using NodePtr = decltype(autograd::Edge::function);

template <typename T, typename... Args>
NodePtr make_node(Args&&... args) {
  if constexpr (std::is_same_v<NodePtr, std::shared_ptr<autograd::Node>>) {
    return std::make_shared<T>(std::forward<Args>(args)...);
  } else {
    return c10::make_intrusive<T>(std::forward<Args>(args)...);
  }
}

// ``result``: a tensor to write, or undefined for a fresh one shaped like saved[0];
// ``skip``: the kSkip parameter's value.
at::Tensor launch(const Spec& spec, const std::vector<at::Tensor>& saved, const at::Tensor& grad, at::Tensor result,
                  float skip) {
  const at::Tensor& like = saved[0];
  c10::cuda::CUDAGuard guard(like.device());
  if (!result.defined()) {
    result = at::empty(like.sizes(), like.options().memory_format(at::MemoryFormat::Contiguous));
  }
  const int64_t slots = static_cast<int64_t>(saved.size());
  std::vector<int64_t> storage(spec.params.size() + 2, 0);  // 8 bytes a parameter; two null scratch pointers
  std::vector<void*> params(storage.size());
  for (size_t i = 0; i < spec.params.size(); ++i) {
    const Param& param = spec.params[i];
    void* cell = &storage[i];
    switch (param.kind) {
      case kSlot: {
        const at::Tensor& t = param.value < slots ? saved[param.value] : param.value == slots ? grad : result;
        void* pointer = t.data_ptr();
        std::memcpy(cell, &pointer, sizeof(pointer));
        break;
      }
      case kInteger:
        std::memcpy(cell, &param.value, sizeof(param.value));
        break;
      case kFloat32: {
        const float value = static_cast<float>(param.number);
        std::memcpy(cell, &value, sizeof(value));
        break;
      }
      case kSkip:
        std::memcpy(cell, &skip, sizeof(skip));
        break;
    }
    params[i] = cell;
  }
  params[spec.params.size()] = &storage[spec.params.size()];
  params[spec.params.size() + 1] = &storage[spec.params.size() + 1];
  CUstream stream = c10::cuda::getCurrentCUDAStream(like.get_device()).stream();
  TORCH_CHECK(ensure_context(like.get_device()), "flag_gems: no CUDA context for the launch");
  const int status = launch_kernel()(spec.function, spec.grid[0], spec.grid[1], spec.grid[2], spec.threads, 1, 1,
                                     spec.shared, stream, params.data(), nullptr);
  TORCH_CHECK(status == 0, "flag_gems: cuLaunchKernel failed with CUDA error ", status);
  return result;
}

class KernelBackward final : public autograd::Node {
 public:
  KernelBackward(autograd::edge_list&& edges, int64_t spec, const std::vector<at::Tensor>& saved, std::string name,
                 at::Tensor speculated)
      : Node(std::move(edges)), spec_(spec), name_(std::move(name)), speculated_(std::move(speculated)) {
    saved_.reserve(saved.size());
    for (const at::Tensor& t : saved) saved_.emplace_back(t, false);
  }

  autograd::variable_list apply(autograd::variable_list&& grads) override {
    const at::Tensor& grad = grads[0];
    if (!grad.defined()) return {at::Tensor()};
    std::vector<at::Tensor> saved;
    saved.reserve(saved_.size());
    for (const autograd::SavedVariable& s : saved_) saved.push_back(s.unpack());  // raises once released
    at::Tensor speculated;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      speculated = std::move(speculated_);  // one backward's: a second one gets a fresh result
      speculated_ = at::Tensor();
    }
    const Spec& spec = *specs[spec_];
    if (!at::GradMode::is_enabled() && grad.dim() == 0 && grad.scalar_type() == spec.grad_dtype &&
        grad.device() == saved[0].device() && aligned16(grad) == spec.grad_aligned && launch_kernel() != nullptr) {
      if (speculated.defined()) return {launch(spec, saved, grad, std::move(speculated), 1.0f)};
      return {launch(spec, saved, grad, at::Tensor(), std::numeric_limits<float>::quiet_NaN())};
    }
    pybind11::gil_scoped_acquire gil;
    pybind11::tuple arguments(saved.size() + 2);
    arguments[0] = pybind11::int_(spec_);
    arguments[1] = pybind11::cast(grad);
    for (size_t i = 0; i < saved.size(); ++i) arguments[i + 2] = pybind11::cast(saved[i]);
    return {(*fallback)(*arguments).cast<at::Tensor>()};
  }

  void release_variables() override {
    for (autograd::SavedVariable& s : saved_) s.reset_data();
    std::lock_guard<std::mutex> lock(mutex_);
    speculated_ = at::Tensor();
  }

  std::string name() const override {
    return name_;
  }

 private:
  const int64_t spec_;
  const std::string name_;
  std::vector<autograd::SavedVariable> saved_;
  std::mutex mutex_;
  at::Tensor speculated_;  // see the file's comment; undefined once used or released
};

// ``params``: (kind, value, number) per kernel parameter, Triton's order. Returns the
// spec's index, or -1 once the table is full (the caller keeps its Python backward).
int64_t register_backward(int64_t function, const std::vector<int64_t>& grid, int64_t threads, int64_t shared,
                          const std::vector<std::tuple<int64_t, int64_t, double>>& params, at::ScalarType grad_dtype,
                          bool grad_aligned) {
  const int64_t index = spec_count.load();
  if (index >= kMaxSpecs || grid.size() != 3) return -1;
  auto spec = std::make_unique<Spec>();
  spec->function = reinterpret_cast<CUfunction>(function);
  for (int i = 0; i < 3; ++i) spec->grid[i] = static_cast<unsigned>(grid[i]);
  spec->threads = static_cast<unsigned>(threads);
  spec->shared = static_cast<unsigned>(shared);
  spec->skips = false;
  for (const auto& [kind, value, number] : params) {
    spec->params.push_back(Param{static_cast<ParamKind>(kind), value, number});
    spec->skips = spec->skips || kind == kSkip;
  }
  spec->grad_dtype = grad_dtype;
  spec->grad_aligned = grad_aligned;
  specs[index] = std::move(spec);
  spec_count.store(index + 1);  // Python registers under the GIL: one writer
  return index;
}

void set_backward_fallback(pybind11::object function) {
  if (fallback == nullptr) fallback = new pybind11::object();
  *fallback = std::move(function);
}

// ``output`` (a fresh result no graph knows yet) gets a KernelBackward node as its
// grad_fn, leading to ``input``, keeping ``saved`` for the backward; ``speculated``,
// when given, is the result the spec's first launch completes (see above).
at::Tensor attach_backward(at::Tensor output, const at::Tensor& input, const std::vector<at::Tensor>& saved,
                           int64_t spec, const std::string& name, c10::optional<at::Tensor> speculated) {
  TORCH_CHECK(spec >= 0 && spec < spec_count.load() && fallback != nullptr, "flag_gems: no such backward spec");
  TORCH_CHECK(!speculated.has_value() || specs[spec]->skips, "flag_gems: the backward spec has no skip parameter");
  NodePtr node = make_node<KernelBackward>(autograd::collect_next_edges(input), spec, saved, name,
                                           speculated.value_or(at::Tensor()));
  autograd::set_history(output, node);
  return output;
}

}  // namespace

void define_kernel_backward(pybind11::module& m) {
  m.def("register_backward", &register_backward, "register a compiled backward kernel launch");
  m.def("set_backward_fallback", &set_backward_fallback, "the Python backward for calls a spec does not cover");
  m.def("attach_backward", &attach_backward, "give a result a C++ backward node");
}

}  // namespace flag_gems
