// returned_error: describing an error returned by value, once, when asked.

#include <backplane/returned_error.hpp>

#include <boost/core/demangle.hpp>

#include <new>

namespace backplane {

namespace detail {
struct returned_description {
  returned_error::kind how = returned_error::kind::opaque;
  std::string message;
  std::string category;
  std::optional<int> code;
  std::string type_name;
  std::string what;
};

namespace {
returned_description const& undescribable() noexcept {
  static returned_description const none{};
  return none;
}

void finish(returned_description& out) {
  switch (out.how) {
    case returned_error::kind::error_code:
      out.what.append(out.category).append(": ").append(out.message);
      break;
    case returned_error::kind::formatted: out.what = out.message; break;
    case returned_error::kind::opaque: out.what = out.type_name; break;
  }
}

/// Boost's and the standard's error codes read alike.
template <class Code>
void describe_code(Code const& ec, std::type_info const& type, returned_description& out) {
  out.how = returned_error::kind::error_code;
  out.category = ec.category().name();
  out.code = ec.value();
  out.message = ec.message();
  out.type_name = boost::core::demangle(type.name());
  finish(out);
}
}  // namespace

void describe_returned_code(boost::system::error_code const& ec, std::type_info const& type,
                            returned_description& out) {
  describe_code(ec, type, out);
}

void describe_returned_code(std::error_code const& ec, std::type_info const& type,
                            returned_description& out) {
  describe_code(ec, type, out);
}

void describe_returned_text(std::string text, std::type_info const& type,
                            returned_description& out) {
  out.how = returned_error::kind::formatted;
  out.message = std::move(text);
  out.type_name = boost::core::demangle(type.name());
  finish(out);
}

void describe_returned_type(std::type_info const& type, returned_description& out) {
  out.how = returned_error::kind::opaque;
  out.type_name = boost::core::demangle(type.name());
  finish(out);
}
}  // namespace detail

returned_error::~returned_error() { delete described_.load(std::memory_order_acquire); }

detail::returned_description const& returned_error::described() const noexcept {
  if (auto const* d = described_.load(std::memory_order_acquire)) return *d;
  // Two threads may describe at once; one description is kept, the other freed.
  auto* mine = new (std::nothrow) detail::returned_description;
  if (!mine) return detail::undescribable();
  try {
    describe(*mine);
  } catch (...) {
    delete mine;
    return detail::undescribable();
  }
  detail::returned_description* expected = nullptr;
  if (described_.compare_exchange_strong(expected, mine, std::memory_order_acq_rel)) return *mine;
  delete mine;
  return *expected;
}

char const* returned_error::what() const noexcept { return described().what.c_str(); }
returned_error::kind returned_error::how() const noexcept { return described().how; }
std::string_view returned_error::message() const noexcept { return described().message; }
std::string_view returned_error::category() const noexcept { return described().category; }
std::optional<int> returned_error::code() const noexcept { return described().code; }
std::string_view returned_error::type_name() const noexcept { return described().type_name; }

}  // namespace backplane
