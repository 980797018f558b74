/* One launcher for every compiled Triton kernel (see direct_launch.py).
 *
 * Triton 3.5 and 3.6 build a C launcher per kernel signature with the system
 * compiler, about a quarter of a second each on an H100 host: most of a cold
 * operator's first call after the compile itself. This module is built once
 * per machine; a kernel registers the kind of each parameter, and launch()
 * packs the arguments by those kinds and calls cuLaunchKernel.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef int CUdevice;
typedef void* CUcontext;
typedef void* CUfunction;
typedef void* CUstream;

typedef CUresult (*LaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                                 CUstream, void**, void**);
typedef CUresult (*CtxGetCurrent)(CUcontext*);
typedef CUresult (*DeviceGet)(CUdevice*, int);
typedef CUresult (*PrimaryCtxRetain)(CUcontext*, CUdevice);
typedef CUresult (*CtxSetCurrent)(CUcontext);
typedef CUresult (*GetErrorString)(CUresult, const char**);

static struct {
  LaunchKernel launch_kernel;
  CtxGetCurrent ctx_get_current;
  DeviceGet device_get;
  PrimaryCtxRetain primary_ctx_retain;
  CtxSetCurrent ctx_set_current;
  GetErrorString get_error_string;
} cuda;

/* Parameter kinds, one byte each: a pointer (a tensor's data_ptr(), an int or None), an
 * integer of up to 64 bits (8-byte little-endian cells serve narrower ones too), an
 * unsigned 64-bit integer, a float (Triton passes Python floats as fp32), or an argument
 * Triton specialised away (an int equal to 1, None). */
enum { POINTER = 'p', INTEGER = 'i', UNSIGNED = 'u', FLOAT32 = 'f', SKIP = '-' };
#define MAX_PARAMS 256

typedef struct {
  CUfunction function;
  int device;
  unsigned threads;
  unsigned shared;
  Py_ssize_t count; /* arguments launch() takes after the stream */
  char kinds[MAX_PARAMS];
} Kernel;

static Kernel* kernels = NULL;
/* While a call is planned (fastpath/plans.py), each launch is also appended here as
 * (function, grid_x, grid_y, grid_z, threads, shared, kinds, cells): the parameters as
 * packed, skipped ones left out. */
static PyObject* recording = NULL;
static unsigned long recording_thread = 0; /* only the planning thread's launches belong to its plan */
static Py_ssize_t kernel_count = 0, kernel_capacity = 0;
static PyObject* data_ptr_name = NULL;
static PyObject* dtype_name = NULL;
static PyObject* get_device_name = NULL;
static PyTypeObject* tensor_type = NULL;

static int load_driver(void) {
  if (cuda.launch_kernel != NULL) return 0;
  void* library = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
  if (library == NULL) library = dlopen("libcuda.so.1", RTLD_NOW);
  if (library == NULL) {
    PyErr_SetString(PyExc_RuntimeError, "flag_gems direct launch: cannot load libcuda.so.1");
    return -1;
  }
  cuda.ctx_get_current = (CtxGetCurrent)dlsym(library, "cuCtxGetCurrent");
  cuda.device_get = (DeviceGet)dlsym(library, "cuDeviceGet");
  cuda.primary_ctx_retain = (PrimaryCtxRetain)dlsym(library, "cuDevicePrimaryCtxRetain");
  cuda.ctx_set_current = (CtxSetCurrent)dlsym(library, "cuCtxSetCurrent");
  cuda.get_error_string = (GetErrorString)dlsym(library, "cuGetErrorString");
  LaunchKernel launch_kernel = (LaunchKernel)dlsym(library, "cuLaunchKernel");
  if (!launch_kernel || !cuda.ctx_get_current || !cuda.device_get || !cuda.primary_ctx_retain ||
      !cuda.ctx_set_current || !cuda.get_error_string) {
    PyErr_SetString(PyExc_RuntimeError, "flag_gems direct launch: libcuda.so.1 lacks a driver entry point");
    return -1;
  }
  cuda.launch_kernel = launch_kernel;
  return 0;
}

static int cuda_error(CUresult status, const char* what) {
  const char* text = NULL;
  if (cuda.get_error_string == NULL || cuda.get_error_string(status, &text) != 0 || text == NULL) text = "unknown";
  PyErr_Format(PyExc_RuntimeError, "flag_gems direct launch: %s failed: CUDA error %d (%s)", what, status, text);
  return -1;
}

/* As Triton's launcher: a thread that never touched the runtime has no current context. */
static int ensure_context(int device) {
  CUcontext context = NULL;
  CUresult status = cuda.ctx_get_current(&context);
  if (status != 0) return cuda_error(status, "cuCtxGetCurrent");
  if (context != NULL) return 0;
  CUdevice handle;
  if ((status = cuda.device_get(&handle, device)) != 0) return cuda_error(status, "cuDeviceGet");
  if ((status = cuda.primary_ctx_retain(&context, handle)) != 0) return cuda_error(status, "cuDevicePrimaryCtxRetain");
  if ((status = cuda.ctx_set_current(context)) != 0) return cuda_error(status, "cuCtxSetCurrent");
  return 0;
}

/* register(function, device, threads, shared, kinds: bytes) -> handle */
static PyObject* register_kernel(PyObject* self, PyObject* args) {
  unsigned long long function;
  int device;
  unsigned threads, shared;
  const char* kinds;
  Py_ssize_t count;
  if (!PyArg_ParseTuple(args, "KiIIy#", &function, &device, &threads, &shared, &kinds, &count)) return NULL;
  if (count > MAX_PARAMS) {
    PyErr_Format(PyExc_ValueError, "flag_gems direct launch: %zd parameters, at most %d", count, MAX_PARAMS);
    return NULL;
  }
  for (Py_ssize_t i = 0; i < count; ++i) {
    if (!strchr("piuf-", kinds[i]) || kinds[i] == 0) {
      PyErr_Format(PyExc_ValueError, "flag_gems direct launch: unknown parameter kind %c", kinds[i]);
      return NULL;
    }
  }
  if (load_driver() != 0) return NULL;
  if (kernel_count == kernel_capacity) {
    Py_ssize_t capacity = kernel_capacity ? 2 * kernel_capacity : 64;
    Kernel* grown = (Kernel*)realloc(kernels, capacity * sizeof(Kernel));
    if (grown == NULL) return PyErr_NoMemory();
    kernels = grown;
    kernel_capacity = capacity;
  }
  Kernel* kernel = &kernels[kernel_count];
  kernel->function = (CUfunction)(uintptr_t)function;
  kernel->device = device;
  kernel->threads = threads;
  kernel->shared = shared;
  kernel->count = count;
  memcpy(kernel->kinds, kinds, count);
  return PyLong_FromSsize_t(kernel_count++);
}

static int pack_pointer(PyObject* arg, uint64_t* cell) {
  if (arg == Py_None) {
    *cell = 0;
    return 0;
  }
  PyObject* value = PyLong_Check(arg) ? (Py_INCREF(arg), arg) : PyObject_CallMethodNoArgs(arg, data_ptr_name);
  if (value == NULL) return -1;
  *cell = PyLong_AsUnsignedLongLong(value);
  Py_DECREF(value);
  return (*cell == (uint64_t)-1 && PyErr_Occurred()) ? -1 : 0;
}

static int pack(char kind, PyObject* arg, uint64_t* cell) {
  switch (kind) {
    case POINTER:
      return pack_pointer(arg, cell);
    case INTEGER: {
      long long value = PyLong_AsLongLong(arg);
      if (value == -1 && PyErr_Occurred()) return -1;
      memcpy(cell, &value, sizeof(value));
      return 0;
    }
    case UNSIGNED: {
      unsigned long long value = PyLong_AsUnsignedLongLong(arg);
      if (value == (unsigned long long)-1 && PyErr_Occurred()) return -1;
      memcpy(cell, &value, sizeof(value));
      return 0;
    }
    case FLOAT32: {
      double value = PyFloat_AsDouble(arg);
      if (value == -1.0 && PyErr_Occurred()) return -1;
      float narrow = (float)value;
      memcpy(cell, &narrow, sizeof(narrow));
      return 0;
    }
  }
  return 0;
}

static int grid_size(PyObject* arg, unsigned* size) {
  unsigned long value = PyLong_AsUnsignedLong(arg);
  if (value == (unsigned long)-1 && PyErr_Occurred()) return -1;
  *size = (unsigned)value;
  return 0;
}

static int record_launch(const Kernel* kernel, const unsigned* grid, const uint64_t* cells, int used) {
  char kinds[MAX_PARAMS];
  int count = 0;
  for (Py_ssize_t i = 0; i < kernel->count; ++i)
    if (kernel->kinds[i] != SKIP) kinds[count++] = kernel->kinds[i];
  PyObject* values = PyTuple_New(used);
  if (values == NULL) return -1;
  for (int i = 0; i < used; ++i) {
    PyObject* value = PyLong_FromUnsignedLongLong(cells[i]);
    if (value == NULL) {
      Py_DECREF(values);
      return -1;
    }
    PyTuple_SET_ITEM(values, i, value);
  }
  PyObject* entry = Py_BuildValue("(KIIIIIy#N)", (unsigned long long)(uintptr_t)kernel->function, grid[0], grid[1],
                                  grid[2], kernel->threads, kernel->shared, kinds, (Py_ssize_t)count, values);
  if (entry == NULL) return -1;
  int status = PyList_Append(recording, entry);
  Py_DECREF(entry);
  return status;
}

/* record(on) -> the launches this thread made since record(True), when turning it off;
 * None else. One thread records at a time (plans.py holds a lock). */
static PyObject* record(PyObject* self, PyObject* on) {
  PyObject* recorded = recording;
  recording = NULL;
  if (PyObject_IsTrue(on)) {
    Py_XDECREF(recorded);
    recording = PyList_New(0);
    if (recording == NULL) return NULL;
    recording_thread = PyThread_get_thread_ident();
    Py_RETURN_NONE;
  }
  return recorded != NULL ? recorded : PyList_New(0);
}

/* launch(handle, grid_x, grid_y, grid_z, stream, *args) */
static PyObject* launch(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs < 5) {
    PyErr_SetString(PyExc_TypeError, "launch(handle, grid_x, grid_y, grid_z, stream, *args)");
    return NULL;
  }
  Py_ssize_t handle = PyLong_AsSsize_t(args[0]);
  if (handle < 0 || handle >= kernel_count) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "flag_gems direct launch: no such kernel");
    return NULL;
  }
  const Kernel* kernel = &kernels[handle];
  if (nargs - 5 != kernel->count) {
    PyErr_Format(PyExc_TypeError, "flag_gems direct launch: the kernel takes %zd arguments, got %zd", kernel->count,
                 nargs - 5);
    return NULL;
  }
  unsigned grid[3];
  for (int i = 0; i < 3; ++i)
    if (grid_size(args[1 + i], &grid[i]) != 0) return NULL;
  CUstream stream = PyLong_AsVoidPtr(args[4]);
  if (stream == NULL && PyErr_Occurred()) return NULL;

  uint64_t cells[MAX_PARAMS + 2];
  void* params[MAX_PARAMS + 2];
  int used = 0;
  for (Py_ssize_t i = 0; i < kernel->count; ++i) {
    if (kernel->kinds[i] == SKIP) continue;
    if (pack(kernel->kinds[i], args[5 + i], &cells[used]) != 0) return NULL;
    params[used] = &cells[used];
    ++used;
  }
  /* Triton's kernels end with the global and profile scratch pointers: null, since the
   * kernels launched here need neither (direct_launch.py checks). */
  for (int i = 0; i < 2; ++i, ++used) {
    cells[used] = 0;
    params[used] = &cells[used];
  }
  if (recording != NULL && recording_thread == PyThread_get_thread_ident() &&
      record_launch(kernel, grid, cells, used - 2) != 0)
    return NULL;
  if (grid[0] == 0 || grid[1] == 0 || grid[2] == 0) Py_RETURN_NONE;
  if (ensure_context(kernel->device) != 0) return NULL;
  /* Read before the GIL goes: another thread's register() may move the table. */
  const CUfunction function = kernel->function;
  const unsigned threads = kernel->threads, shared = kernel->shared;
  CUresult status;
  Py_BEGIN_ALLOW_THREADS;
  status = cuda.launch_kernel(function, grid[0], grid[1], grid[2], threads, 1, 1, shared, stream, params, NULL);
  Py_END_ALLOW_THREADS;
  if (status != 0) {
    cuda_error(status, "cuLaunchKernel");
    return NULL;
  }
  Py_RETURN_NONE;
}

/* The launch key of launch.py's Launcher (see launch._key, which this computes alike):
 * (device of the first tensor, one entry per argument, constexpr_items), an argument's
 * entry being what Triton specialises on: a tensor's (dtype, 16-byte aligned), an int's
 * (== 1, divisible by 16, int32), a bool or None itself, another object's type. */
static PyObject* int_key(PyObject* arg) {
  int overflow = 0;
  long long value = PyLong_AsLongLongAndOverflow(arg, &overflow);
  if (value == -1 && PyErr_Occurred()) return NULL;
  int divisible;
  if (overflow) {
    PyObject* sixteen = PyLong_FromLong(16);
    PyObject* rest = sixteen ? PyNumber_Remainder(arg, sixteen) : NULL;
    Py_XDECREF(sixteen);
    if (rest == NULL) return NULL;
    divisible = PyLong_AsLong(rest) == 0;
    Py_DECREF(rest);
  } else {
    divisible = value % 16 == 0;
  }
  int int32 = !overflow && value >= -2147483648LL && value < 2147483648LL;
  return PyTuple_Pack(3, (!overflow && value == 1) ? Py_True : Py_False, divisible ? Py_True : Py_False,
                      int32 ? Py_True : Py_False);
}

static PyObject* tensor_key(PyObject* arg) {
  PyObject* dtype = PyObject_GetAttr(arg, dtype_name);
  if (dtype == NULL) return NULL;
  uint64_t pointer;
  if (pack_pointer(arg, &pointer) != 0) {
    Py_DECREF(dtype);
    return NULL;
  }
  PyObject* key = PyTuple_Pack(2, dtype, pointer % 16 == 0 ? Py_True : Py_False);
  Py_DECREF(dtype);
  return key;
}

/* key(args: tuple, constexpr_items: tuple) */
static PyObject* launch_key(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 2 || !PyTuple_Check(args[0]) || tensor_type == NULL) {
    PyErr_SetString(PyExc_TypeError, "key(args: tuple, constexpr_items: tuple) after set_tensor_type");
    return NULL;
  }
  PyObject* values = args[0];
  Py_ssize_t count = PyTuple_GET_SIZE(values);
  PyObject* keys = PyTuple_New(count);
  if (keys == NULL) return NULL;
  PyObject* device = NULL;
  for (Py_ssize_t i = 0; i < count; ++i) {
    PyObject* arg = PyTuple_GET_ITEM(values, i);
    PyObject* key;
    if (PyObject_TypeCheck(arg, tensor_type)) {
      key = tensor_key(arg);
      if (key != NULL && device == NULL) device = PyObject_CallMethodNoArgs(arg, get_device_name);
      if (key != NULL && device == NULL) Py_CLEAR(key);
    } else if (arg == Py_None || PyBool_Check(arg)) {
      key = Py_NewRef(arg);
    } else if (PyLong_Check(arg)) {
      key = int_key(arg);
    } else {
      key = Py_NewRef((PyObject*)Py_TYPE(arg));
    }
    if (key == NULL) {
      Py_DECREF(keys);
      Py_XDECREF(device);
      return NULL;
    }
    PyTuple_SET_ITEM(keys, i, key);
  }
  if (device == NULL) {
    Py_DECREF(keys);
    PyErr_SetString(PyExc_ValueError, "flag_gems direct launch: a launch needs a tensor argument");
    return NULL;
  }
  PyObject* result = PyTuple_Pack(3, device, keys, args[1]);
  Py_DECREF(device);
  Py_DECREF(keys);
  return result;
}

static PyObject* set_tensor_type(PyObject* self, PyObject* type) {
  if (!PyType_Check(type)) {
    PyErr_SetString(PyExc_TypeError, "set_tensor_type(torch.Tensor)");
    return NULL;
  }
  Py_XSETREF(tensor_type, (PyTypeObject*)Py_NewRef(type));
  Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"key", (PyCFunction)(void (*)(void))launch_key, METH_FASTCALL, "key(args, constexpr_items) -> launch key"},
    {"set_tensor_type", set_tensor_type, METH_O, "set_tensor_type(torch.Tensor)"},
    {"record", record, METH_O, "record(on): start recording launches, or stop and return them"},
    {"register", register_kernel, METH_VARARGS, "register(function, device, threads, shared, kinds) -> handle"},
    {"launch", (PyCFunction)(void (*)(void))launch, METH_FASTCALL,
     "launch(handle, grid_x, grid_y, grid_z, stream, *args)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "flag_gems_direct_launch", NULL, -1, methods};

PyMODINIT_FUNC PyInit_flag_gems_direct_launch(void) {
  data_ptr_name = PyUnicode_InternFromString("data_ptr");
  dtype_name = PyUnicode_InternFromString("dtype");
  get_device_name = PyUnicode_InternFromString("get_device");
  if (data_ptr_name == NULL || dtype_name == NULL || get_device_name == NULL) return NULL;
  return PyModule_Create(&module);
}
