// What the C++ files of the extension share besides cuLaunchKernel (cuda_launch.h).
#pragma once

#include <torch/extension.h>

#include <ATen/core/stack.h>

#include <vector>

namespace flag_gems {

// pointwise_fast.cpp: the elementwise kernel table's share of a route. ``operands``
// leading arguments (tensors, or a tensor and a float where ``floats``) go to the
// kernel of Pointwise ``op``; the arguments after them must equal ``defaults``;
// ``alpha`` is the int the kernel takes after the tensors. nullopt: not covered.
struct PointwiseRoute {
  int64_t op = -1;  // -1: none
  int64_t operands = 0;
  std::vector<c10::IValue> defaults;
  c10::optional<int64_t> alpha;
  bool floats = true;
};
c10::optional<at::Tensor> launch_pointwise_route(const PointwiseRoute& route, const torch::jit::Stack& stack,
                                                  size_t first);
void define_pointwise(pybind11::module& m);

// routes.cpp: whether this thread is planning a call (the kernel table then steps aside,
// so that every launch goes through the recorder).
bool planning_now();
void define_routes(pybind11::module& m);

// kernel_backward.cpp
void define_kernel_backward(pybind11::module& m);

}  // namespace flag_gems
