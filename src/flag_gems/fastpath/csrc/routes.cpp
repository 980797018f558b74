// Routes: a boxed kernel registered on the CUDA key in front of each of flag_gems'
// Python routers, which answers most calls with no Python at all.
//
// A call is keyed by its layout: per argument, a tensor's dtype, device, sizes,
// strides, storage offset, address modulo 16, flags and which earlier argument shares
// its storage (a CPU scalar's value too); a number's value; a list's items; plus the
// global switches a result may depend on (TF32, grad mode, determinism). The first
// call of a key goes to the Python router, which *plans* it: it runs the call while
// recording the allocations it makes and the kernels it launches, and hands us the
// plan (the allocations' shapes, strides and dtypes; each launch's kernel, grid and
// parameters, with the pointers among them tied to an operand or an allocation plus
// an offset; the outputs). Later calls of that key replay the plan: allocate, patch
// the pointers, cuLaunchKernel, return. A call the router sends to the native kernel
// is planned as "native", and replays call that kernel directly. A call that cannot
// be replayed (it reads tensor data, calls other operators, launches through Triton's
// own launcher, ...) is planned as "Python": the router takes it, every time.
//
// The router's decision depends only on what the key holds, so a replay does what the
// router would. Calls made while our Python runs (from inside an implementation, or in
// Python's native_calls blocks) always go to the router, which sends them to native.

#include <torch/extension.h>
#include <torch/library.h>
#include <ATen/Context.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/GradMode.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <atomic>
#include <cstring>
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

constexpr size_t kPlansKept = 4096;  // plans per route; more (dynamic shapes) start the table over
constexpr int kRetries = 3;          // plannings that may end in "try again" before a key stays in Python
constexpr int kMaxParams = 256;

enum Tag : int64_t {
  kUndefined = 1, kTensor, kDouble, kInt, kBool, kNone, kString, kIntList, kDoubleList, kBoolList, kTensorList,
  kDevice, kGlobals
};

// ---- plans

enum Source : int32_t { kOperand = 0, kAllocation = 1, kNothing = 2 };

struct Patch {  // cells[cell] = address of (source, index) + offset
  int32_t cell;
  int32_t source;
  int32_t index;
  int64_t offset;
};

struct Launch {
  CUfunction function;
  unsigned grid[3];
  unsigned threads;
  unsigned shared;
  std::vector<uint64_t> cells;  // the kernel's parameters as direct_launch packs them
  std::vector<Patch> patches;
};

struct Allocation {
  std::vector<int64_t> sizes, strides;
  at::ScalarType dtype;
};

struct Output {
  int32_t source;
  int32_t index;
  bool view;  // an allocation seen through sizes, strides and offset
  std::vector<int64_t> sizes, strides;
  int64_t offset;
};

enum Kind { kReplay, kNative, kPython, kRetry };

struct Plan {
  Kind kind = kPython;
  int retries = 0;
  int device = 0;
  std::vector<Allocation> allocations;
  std::vector<Launch> launches;
  std::vector<Output> outputs;
};

struct KeyHash {
  size_t operator()(const std::vector<int64_t>& key) const {
    uint64_t hash = 1469598103934665603ull;
    for (int64_t word : key) {
      hash ^= static_cast<uint64_t>(word);
      hash *= 1099511628211ull;
    }
    return static_cast<size_t>(hash);
  }
};

struct Route {
  Route(std::string name, c10::SafeKernelFunction python, c10::optional<c10::SafeKernelFunction> native,
        PointwiseRoute pointwise)
      : name(std::move(name)), python(std::move(python)), native(std::move(native)),
        pointwise(std::move(pointwise)) {}
  const std::string name;
  const c10::SafeKernelFunction python;  // the Python router this route was registered over
  const c10::optional<c10::SafeKernelFunction> native;  // the kernel that router falls back to
  const PointwiseRoute pointwise;
  std::atomic<bool> enabled{false};  // the row is on and nothing is being recorded
  std::shared_mutex lock;
  std::unordered_map<std::vector<int64_t>, std::shared_ptr<const Plan>, KeyHash> plans;
};

std::vector<std::unique_ptr<Route>>& routes() {
  static std::vector<std::unique_ptr<Route>> table;
  return table;
}

std::atomic<int64_t> routed{0};  // calls the routes answered themselves

// ---- this thread

struct Pending {  // the call whose plan the Python router is asked for
  Route* route;
  std::vector<int64_t> key;
};

struct Thread {
  int depth = 0;   // route calls of this thread now in the Python router
  int native = 0;  // Python native_calls blocks open on this thread
  Pending* pending = nullptr;
  std::vector<int64_t> key;           // scratch: the key of the call at hand
  std::vector<at::Tensor> operands;   // scratch: its CUDA tensors, in argument order
  std::vector<const c10::StorageImpl*> storages;
};

thread_local Thread thread;

// ---- keys

bool add_tensor(const at::Tensor& t, std::vector<int64_t>& key) {
  if (!t.defined()) {
    key.push_back(kUndefined);
    return true;
  }
  if (t.layout() != at::kStrided || t.is_nested() || (!t.is_cuda() && !t.is_cpu())) return false;
  const c10::TensorImpl* impl = t.unsafeGetTensorImpl();
  if (!t.has_storage()) return false;
  const int64_t dim = t.dim();
  // The address modulo 16, not only whether it is aligned: a pointer the implementation
  // derives (a slice of the operand) is aligned or not by the residue.
  const int64_t residue = t.is_cuda() ? static_cast<int64_t>(reinterpret_cast<uintptr_t>(t.data_ptr()) % 16) : 0;
  const int64_t flags = (t.is_neg() ? 1 : 0) | (t.is_conj() ? 2 : 0) | (impl->is_wrapped_number() ? 4 : 0) |
                        (t.requires_grad() ? 8 : 0) | (residue << 4);
  key.push_back(kTensor | (static_cast<int64_t>(t.scalar_type()) << 8) |
                (static_cast<int64_t>(t.device().type()) << 16) | (static_cast<int64_t>(t.device().index() + 1) << 24) |
                (dim << 32) | (flags << 40));
  for (int64_t size : t.sizes()) key.push_back(size);
  for (int64_t stride : t.strides()) key.push_back(stride);
  key.push_back(t.storage_offset());
  // which earlier tensor shares this one's storage: their relative layout is in the key
  const c10::StorageImpl* storage = t.storage().unsafeGetStorageImpl();
  int64_t link = -1;
  for (size_t i = 0; i < thread.storages.size(); ++i) {
    if (thread.storages[i] == storage) {
      link = static_cast<int64_t>(i);
      break;
    }
  }
  key.push_back(link);
  thread.storages.push_back(storage);
  if (t.is_cpu()) {
    // A CPU operand of a CUDA call is a number: its value may decide the result.
    if (t.numel() != 1 || t.element_size() > 8) return false;
    int64_t value = 0;
    std::memcpy(&value, t.const_data_ptr(), t.element_size());
    key.push_back(value);
  } else {
    thread.operands.push_back(t);
  }
  return true;
}

int64_t bits_of(double value) {
  int64_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return bits;
}

// A list of numbers: its tag and length, then each item as one word.
template <typename List, typename Word>
void add_list(Tag tag, const List& list, std::vector<int64_t>& key, Word word) {
  key.push_back(tag | (static_cast<int64_t>(list.size()) << 8));
  for (const auto item : list) key.push_back(word(item));
}

bool add_value(const c10::IValue& value, std::vector<int64_t>& key) {
  if (value.isTensor()) return add_tensor(value.toTensor(), key);
  if (value.isNone()) {
    key.push_back(kNone);
  } else if (value.isDouble()) {
    key.push_back(kDouble);
    key.push_back(bits_of(value.toDouble()));
  } else if (value.isInt()) {
    key.push_back(kInt);
    key.push_back(value.toInt());
  } else if (value.isBool()) {
    key.push_back(kBool | (value.toBool() ? 256 : 0));
  } else if (value.isString()) {
    const std::string& text = value.toStringRef();
    key.push_back(kString | (static_cast<int64_t>(text.size()) << 8));
    for (size_t i = 0; i < text.size(); i += 8) {
      int64_t word = 0;
      std::memcpy(&word, text.data() + i, std::min<size_t>(8, text.size() - i));
      key.push_back(word);
    }
  } else if (value.isIntList()) {
    add_list(kIntList, value.toIntList(), key, [](int64_t item) { return item; });
  } else if (value.isDoubleList()) {
    add_list(kDoubleList, value.toDoubleList(), key, bits_of);
  } else if (value.isBoolList()) {
    add_list(kBoolList, value.toBoolList(), key, [](bool item) { return static_cast<int64_t>(item); });
  } else if (value.isTensorList()) {
    const auto list = value.toTensorList();
    key.push_back(kTensorList | (static_cast<int64_t>(list.size()) << 8));
    for (const at::Tensor& item : list) {
      if (!add_tensor(item, key)) return false;
    }
  } else if (value.isDevice()) {
    const c10::Device device = value.toDevice();
    key.push_back(kDevice | (static_cast<int64_t>(device.type()) << 8) | ((device.index() + 1) << 16));
  } else {
    return false;  // generators, complex numbers, ...: Python decides every time
  }
  return true;
}

// The key of the call's arguments into thread.key (its CUDA tensors into thread.operands);
// false when the call has an argument no key describes.
bool build_key(const torch::jit::Stack& stack, size_t first, size_t count) {
  std::vector<int64_t>& key = thread.key;
  key.clear();
  thread.operands.clear();
  thread.storages.clear();
  const at::Context& context = at::globalContext();
  key.push_back(kGlobals | (context.allowTF32CuBLAS() ? 256 : 0) | (c10::GradMode::is_enabled() ? 512 : 0) |
                (context.deterministicAlgorithms() ? 1024 : 0));
  for (size_t i = first; i < first + count; ++i) {
    if (!add_value(stack[i], key)) return false;
  }
  return !thread.operands.empty();
}

// ---- replays

void replay(const Plan& plan, torch::jit::Stack* stack, size_t count) {
  c10::cuda::CUDAGuard guard(plan.device);
  c10::SmallVector<at::Tensor, 4> allocations;
  const at::TensorOptions options = at::TensorOptions().device(at::kCUDA, plan.device);
  for (const Allocation& a : plan.allocations) {
    allocations.push_back(at::empty_strided(a.sizes, a.strides, options.dtype(a.dtype)));
  }
  const CUstream stream = c10::cuda::getCurrentCUDAStream(plan.device).stream();
  TORCH_CHECK(plan.launches.empty() || ensure_context(plan.device), "flag_gems: no CUDA context for the launch");
  uint64_t cells[kMaxParams + 2];
  void* params[kMaxParams + 2];
  for (const Launch& launch : plan.launches) {
    const size_t used = launch.cells.size();
    std::memcpy(cells, launch.cells.data(), used * sizeof(uint64_t));
    for (const Patch& patch : launch.patches) {
      const at::Tensor& base = patch.source == kOperand ? thread.operands[patch.index] : allocations[patch.index];
      cells[patch.cell] = reinterpret_cast<uint64_t>(base.data_ptr()) + static_cast<uint64_t>(patch.offset);
    }
    cells[used] = cells[used + 1] = 0;  // Triton's global and profile scratch: unused
    for (size_t i = 0; i < used + 2; ++i) params[i] = &cells[i];
    if (launch.grid[0] == 0 || launch.grid[1] == 0 || launch.grid[2] == 0) continue;
    const int status = launch_kernel()(launch.function, launch.grid[0], launch.grid[1], launch.grid[2],
                                       launch.threads, 1, 1, launch.shared, stream, params, nullptr);
    TORCH_CHECK(status == 0, "flag_gems: cuLaunchKernel failed with CUDA error ", status);
  }
  c10::SmallVector<c10::IValue, 3> results;
  for (const Output& o : plan.outputs) {
    if (o.source == kNothing) {
      results.emplace_back(at::Tensor());
    } else if (o.source == kOperand) {
      results.emplace_back(thread.operands[o.index]);
    } else if (o.view) {
      results.emplace_back(allocations[o.index].as_strided(o.sizes, o.strides, o.offset));
    } else {
      results.emplace_back(allocations[o.index]);
    }
  }
  torch::jit::drop(*stack, count);
  for (c10::IValue& result : results) stack->push_back(std::move(result));
}

std::shared_ptr<const Plan> find(Route& route, const std::vector<int64_t>& key) {
  std::shared_lock<std::shared_mutex> lock(route.lock);
  const auto found = route.plans.find(key);
  return found == route.plans.end() ? nullptr : found->second;
}

// The Python router takes the call; ``pending`` asks it for a plan.
void call_python(const Route& route, const c10::OperatorHandle& op, c10::DispatchKeySet keys,
                 torch::jit::Stack* stack, Pending* pending) {
  struct Depth {
    Pending* saved;
    explicit Depth(Pending* pending) : saved(thread.pending) {
      thread.pending = pending;
      ++thread.depth;
    }
    ~Depth() {
      --thread.depth;
      thread.pending = saved;
    }
  } depth(pending);
  route.python.callBoxed(op, keys, stack);
}

class RouteKernel final : public c10::OperatorKernel {
 public:
  explicit RouteKernel(Route* route) : route_(route) {}

  void operator()(const c10::OperatorHandle& op, c10::DispatchKeySet keys, torch::jit::Stack* stack) {
    Route& route = *route_;
    if (!route.enabled.load(std::memory_order_relaxed) || thread.depth > 0 || thread.native > 0) {
      return call_python(route, op, keys, stack, nullptr);
    }
    const size_t count = op.schema().arguments().size();
    const size_t first = stack->size() - count;
    c10::optional<at::Tensor> quick = launch_pointwise_route(route.pointwise, *stack, first);
    if (quick.has_value()) {
      torch::jit::drop(*stack, count);
      stack->emplace_back(std::move(*quick));
      routed.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    struct Release {  // the operands' references end with the call
      ~Release() { thread.operands.clear(); }
    } release;
    if (!build_key(*stack, first, count)) return call_python(route, op, keys, stack, nullptr);
    const std::shared_ptr<const Plan> plan = find(route, thread.key);
    if (plan != nullptr) {
      if (plan->kind == kReplay) {
        replay(*plan, stack, count);
        routed.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      if (plan->kind == kNative && route.native.has_value()) {
        thread.operands.clear();
        routed.fetch_add(1, std::memory_order_relaxed);
        return route.native->callBoxed(op, keys, stack);
      }
      if (plan->kind == kPython) return call_python(route, op, keys, stack, nullptr);
    }
    Pending pending{&route, thread.key};
    thread.operands.clear();
    call_python(route, op, keys, stack, &pending);
  }

 private:
  Route* route_;
};

// ---- what Python calls

void store(std::shared_ptr<Plan> plan) {
  Pending* pending = thread.pending;
  TORCH_CHECK(pending != nullptr && thread.depth == 1, "flag_gems: no call is being planned");
  Route& route = *pending->route;
  std::unique_lock<std::shared_mutex> lock(route.lock);
  auto found = route.plans.find(pending->key);
  if (plan->kind == kRetry && found != route.plans.end() && found->second->kind == kRetry) {
    plan->retries = found->second->retries + 1;
    if (plan->retries >= kRetries) plan->kind = kPython;
  }
  if (route.plans.size() >= kPlansKept && found == route.plans.end()) route.plans.clear();
  route.plans[pending->key] = std::move(plan);
  thread.pending = nullptr;  // one plan per call
}

bool plan_requested() {
  return thread.pending != nullptr && thread.depth == 1;
}

void plan_native() {
  auto plan = std::make_shared<Plan>();
  plan->kind = thread.pending != nullptr && thread.pending->route->native.has_value() ? kNative : kPython;
  store(std::move(plan));
}

void plan_python(bool retry) {
  auto plan = std::make_shared<Plan>();
  plan->kind = retry ? kRetry : kPython;
  store(std::move(plan));
}

using LaunchSpec = std::tuple<int64_t, std::vector<int64_t>, int64_t, int64_t, std::vector<int64_t>,
                              std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t>>>;
using AllocationSpec = std::tuple<std::vector<int64_t>, std::vector<int64_t>, at::ScalarType>;
using OutputSpec = std::tuple<int64_t, int64_t, bool, std::vector<int64_t>, std::vector<int64_t>, int64_t>;

// launches: (function, grid, threads, shared, cells, patches (cell, source, index, offset))
void plan_replay(int64_t device, const std::vector<AllocationSpec>& allocations,
                 const std::vector<LaunchSpec>& launches, const std::vector<OutputSpec>& outputs) {
  auto plan = std::make_shared<Plan>();
  plan->kind = kReplay;
  plan->device = static_cast<int>(device);
  for (const auto& [sizes, strides, dtype] : allocations) plan->allocations.push_back({sizes, strides, dtype});
  for (const auto& [function, grid, threads, shared, cells, patches] : launches) {
    TORCH_CHECK(grid.size() == 3 && cells.size() <= kMaxParams, "flag_gems: a malformed launch plan");
    Launch launch{reinterpret_cast<CUfunction>(function),
                  {static_cast<unsigned>(grid[0]), static_cast<unsigned>(grid[1]), static_cast<unsigned>(grid[2])},
                  static_cast<unsigned>(threads), static_cast<unsigned>(shared), {}, {}};
    for (int64_t cell : cells) launch.cells.push_back(static_cast<uint64_t>(cell));
    for (const auto& [cell, source, index, offset] : patches) {
      TORCH_CHECK(cell >= 0 && cell < static_cast<int64_t>(cells.size()), "flag_gems: a malformed launch plan");
      launch.patches.push_back({static_cast<int32_t>(cell), static_cast<int32_t>(source),
                                static_cast<int32_t>(index), offset});
    }
    plan->launches.push_back(std::move(launch));
  }
  for (const auto& [source, index, view, sizes, strides, offset] : outputs) {
    plan->outputs.push_back({static_cast<int32_t>(source), static_cast<int32_t>(index), view, sizes, strides, offset});
  }
  store(std::move(plan));
}

void clear_plans() {
  for (auto& route : routes()) {
    std::unique_lock<std::shared_mutex> lock(route->lock);
    route->plans.clear();
  }
}

int64_t plan_count() {
  int64_t total = 0;
  for (auto& route : routes()) {
    std::shared_lock<std::shared_mutex> lock(route->lock);
    for (const auto& entry : route->plans) total += entry.second->kind == kReplay || entry.second->kind == kNative;
  }
  return total;
}

void enter_native() { ++thread.native; }
void exit_native() { --thread.native; }

torch::Library& route_library() {
  static torch::Library library(torch::Library::IMPL, "aten", c10::DispatchKey::CUDA, __FILE__, __LINE__);
  return library;
}

class Quiet final : public c10::WarningHandler {
  void process(const c10::Warning&) override {}
};

// Register a route for ``name`` over the kernel now on the CUDA key (flag_gems' Python
// router); ``native`` is the kernel that router falls back to (a torch.library kernel, or
// None), ``pointwise_op`` >= 0 names the elementwise kernel table's operator for the
// calls it covers, whose leading ``operands`` take those kernels and whose later arguments
// must equal ``defaults`` ("i:<int>", "b:<0|1>", "s:<text>" or "n:"). Returns the route's
// index for set_routes.
int64_t install_route(const std::string& name, pybind11::object native, int64_t pointwise_op, int64_t operands,
                      const std::vector<std::string>& defaults, c10::optional<int64_t> alpha, bool floats) {
  const auto dot = name.find('.');
  const std::string base = name.substr(0, dot);
  const std::string overload = dot == std::string::npos ? "" : name.substr(dot + 1);
  const c10::OperatorHandle handle = c10::Dispatcher::singleton().findSchemaOrThrow(
      ("aten::" + base).c_str(), overload.c_str());
  PointwiseRoute pointwise;
  pointwise.op = pointwise_op;
  pointwise.operands = operands;
  pointwise.alpha = alpha;
  pointwise.floats = floats;
  for (const std::string& text : defaults) {
    const std::string rest = text.substr(2);
    switch (text[0]) {
      case 'i': pointwise.defaults.emplace_back(static_cast<int64_t>(std::stoll(rest))); break;
      case 'b': pointwise.defaults.emplace_back(rest == "1"); break;
      case 's': pointwise.defaults.emplace_back(rest); break;
      default: pointwise.defaults.emplace_back(); break;
    }
  }
  c10::optional<c10::SafeKernelFunction> native_kernel;
  if (!native.is_none()) {
    try {
      native_kernel = native.cast<c10::SafeKernelFunction>();
    } catch (const pybind11::cast_error&) {
      // torch's binding of the kernel is not shared with this module: native calls take Python
    }
  }
  routes().push_back(std::make_unique<Route>(name, handle.getComputedKernelForDispatchKey(c10::DispatchKey::CUDA),
                                             std::move(native_kernel), std::move(pointwise)));
  Route* route = routes().back().get();
  Quiet quiet;  // PyTorch warns that we override a kernel: that is the point
  c10::WarningUtils::WarningHandlerGuard guard(&quiet);
  route_library().impl(name.c_str(), torch::CppFunction::makeFromBoxedFunctor(std::make_unique<RouteKernel>(route)));
  return static_cast<int64_t>(routes().size()) - 1;
}

// enabled[i]: whether route i may answer calls itself.
void set_routes(const std::vector<bool>& enabled) {
  for (size_t i = 0; i < enabled.size() && i < routes().size(); ++i) {
    routes()[i]->enabled.store(enabled[i], std::memory_order_relaxed);
  }
}

int64_t routed_calls() {
  return routed.load(std::memory_order_relaxed);
}

}  // namespace

bool planning_now() {
  return thread.pending != nullptr;
}

void define_routes(pybind11::module& m) {
  m.def("install_route", &install_route, "route an aten overload through C++ first");
  m.def("set_routes", &set_routes, "switch the routes' own answers on or off");
  m.def("routed_calls", &routed_calls, "calls the routes answered with no Python");
  m.def("plan_requested", &plan_requested, "whether the route of this call asks the Python router for a plan");
  m.def("plan_native", &plan_native, "plan this call as the native kernel's");
  m.def("plan_python", &plan_python, "plan this call as the Python router's (retry: plan it again next time)");
  m.def("plan_replay", &plan_replay, "plan this call as allocations and launches");
  m.def("clear_plans", &clear_plans, "forget every plan");
  m.def("plan_count", &plan_count, "plans that answer calls with no Python");
  m.def("enter_native", &enter_native, "a native_calls block opens on this thread");
  m.def("exit_native", &exit_native, "a native_calls block closes on this thread");
}

}  // namespace flag_gems
