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

inline void* driver() {
  static void* cuda = [] {
    void* library = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    return library != nullptr ? library : dlopen("libcuda.so.1", RTLD_NOW);
  }();
  return cuda;
}

// A thread that never touched the CUDA runtime has no current context, and
// cuLaunchKernel would fail there: make the device's primary context current first,
// as Triton's launchers do.
inline bool ensure_context(int device) {
  using GetCurrent = int (*)(void**);
  using DeviceGet = int (*)(int*, int);
  using Retain = int (*)(void**, int);
  using SetCurrent = int (*)(void*);
  static const auto get_current = reinterpret_cast<GetCurrent>(dlsym(driver(), "cuCtxGetCurrent"));
  static const auto device_get = reinterpret_cast<DeviceGet>(dlsym(driver(), "cuDeviceGet"));
  static const auto retain = reinterpret_cast<Retain>(dlsym(driver(), "cuDevicePrimaryCtxRetain"));
  static const auto set_current = reinterpret_cast<SetCurrent>(dlsym(driver(), "cuCtxSetCurrent"));
  if (get_current == nullptr || device_get == nullptr || retain == nullptr || set_current == nullptr) return false;
  void* context = nullptr;
  if (get_current(&context) != 0) return false;
  if (context != nullptr) return true;
  int handle = 0;
  return device_get(&handle, device) == 0 && retain(&context, handle) == 0 && set_current(context) == 0;
}

inline LaunchKernel launch_kernel() {
  static LaunchKernel launch =
      driver() ? reinterpret_cast<LaunchKernel>(dlsym(driver(), "cuLaunchKernel")) : nullptr;
  return launch;
}

inline bool aligned16(const at::Tensor& t) {
  return reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0;
}

}  // namespace flag_gems
