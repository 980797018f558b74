// cuLaunchKernel, looked up in the driver the process already loaded: the C++
// wrappers launch kernels Triton compiled, through the driver API, as Triton does.
#pragma once

#include <torch/extension.h>

#include <dlfcn.h>

namespace flag_gems {

using CUfunction = void*;
using CUstream = void*;
using LaunchKernel = int (*)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                             unsigned, CUstream, void**, void**);

inline LaunchKernel launch_kernel() {
  static LaunchKernel launch = [] {
    void* cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (cuda == nullptr) cuda = dlopen("libcuda.so.1", RTLD_NOW);
    return cuda ? reinterpret_cast<LaunchKernel>(dlsym(cuda, "cuLaunchKernel")) : nullptr;
  }();
  return launch;
}

inline bool aligned16(const at::Tensor& t) {
  return reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0;
}

}  // namespace flag_gems
