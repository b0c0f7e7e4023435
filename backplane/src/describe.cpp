#include <backplane/describe.hpp>

#include <cxxabi.h>

#include <cstdlib>
#include <exception>
#include <memory>
#include <typeinfo>

namespace backplane {

namespace {
std::string demangle(char const* name) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> out(abi::__cxa_demangle(name, nullptr, nullptr, &status),
                                             std::free);
  return status == 0 && out ? std::string(out.get()) : std::string(name);
}

std::string current_type() {
  std::type_info const* t = abi::__cxa_current_exception_type();
  return t ? demangle(t->name()) : std::string("unknown exception");
}
}  // namespace

std::string describe(std::exception_ptr const& e) noexcept {
  if (!e) return "none";
  try {
    try {
      std::rethrow_exception(e);
    } catch (std::exception const& ex) {
      return current_type() + ": " + ex.what();
    } catch (...) {
      return current_type();
    }
  } catch (...) {
    return "unknown exception";
  }
}

}  // namespace backplane
