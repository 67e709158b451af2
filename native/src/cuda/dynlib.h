// Run-time loading of a shared library and a table of its symbols (cuBLASLt, NCCL): the build
// needs neither their headers nor their libraries, and a missing library is a clear error at
// the point of use, naming the library and the file names tried.
#pragma once

#include <string>
#include <vector>

namespace sdt::cuda {

class DynamicLibrary {
 public:
  // Tries each file name in order (dlopen with RTLD_NOW | RTLD_LOCAL). Throws std::runtime_error
  // naming `what`, every name tried and the last loader message when none loads.
  DynamicLibrary(const std::string& what, const std::vector<std::string>& file_names);
  ~DynamicLibrary();
  DynamicLibrary(const DynamicLibrary&) = delete;
  DynamicLibrary& operator=(const DynamicLibrary&) = delete;

  // The address of `name`; throws naming the library file and the symbol when it is absent.
  void* symbol(const char* name) const;
  // Binds a function pointer of any type.
  template <class Fn>
  void bind(Fn*& fn, const char* name) const {
    fn = reinterpret_cast<Fn*>(symbol(name));
  }
  const std::string& file_name() const { return loaded_; }

 private:
  void* handle_ = nullptr;
  std::string what_;
  std::string loaded_;
};

}  // namespace sdt::cuda
