#ifdef SDT_HAVE_CUDA
#include "cuda/dynlib.h"

#include <dlfcn.h>

#include <stdexcept>

namespace sdt::cuda {

DynamicLibrary::DynamicLibrary(const std::string& what, const std::vector<std::string>& file_names) : what_(what) {
  std::string tried, last_error;
  for (const std::string& name : file_names) {
    handle_ = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle_) {
      loaded_ = name;
      return;
    }
    const char* err = dlerror();
    last_error = err ? err : "unknown error";
    tried += (tried.empty() ? "" : ", ") + name;
  }
  throw std::runtime_error(what + " could not be loaded (tried " + tried + "; last error: " + last_error +
                           "). Install it or add its directory to LD_LIBRARY_PATH.");
}

DynamicLibrary::~DynamicLibrary() {
  if (handle_) dlclose(handle_);
}

void* DynamicLibrary::symbol(const char* name) const {
  dlerror();
  void* p = dlsym(handle_, name);
  if (!p) {
    throw std::runtime_error(what_ + " (" + loaded_ + ") has no symbol " + name +
                             ": the library is too old or not the expected one");
  }
  return p;
}

}  // namespace sdt::cuda
#endif  // SDT_HAVE_CUDA
