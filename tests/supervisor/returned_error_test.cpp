// An error a managed work returns by value is reported by value: an
// error_code as category + code + message, anything fmt formats as fmt
// formats it, anything else by its type's name. Described only when someone
// listens.

#include "supervisor/fixture.hpp"

#include <boost/system/errc.hpp>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace asio = boost::asio;
using namespace backplane;
using namespace backplane::test;

namespace returned_error_test {
/// fmt cannot format it: reported by its type's name.
struct opaque_error {};
/// fmt formats it (and counts how often it was asked to).
struct http_status {
  int code;
};
inline int formatted = 0;
}  // namespace returned_error_test

template <>
struct fmt::formatter<returned_error_test::http_status> : fmt::formatter<int> {
  auto format(returned_error_test::http_status const& s, fmt::format_context& ctx) const {
    ++returned_error_test::formatted;
    return fmt::format_to(ctx.out(), "HTTP {}", s.code);
  }
};

namespace {

using returned_error_test::http_status;
using returned_error_test::opaque_error;

/// A managed work that returns `error` in its first incarnation, then runs
/// until stopped.
template <class E>
child_spec fails_once(std::string id, E error) {
  return worker(std::move(id),
                [error](child_context& c) -> asio::awaitable<boost::system::result<void, E>> {
                  if (c.incarnation == 1)
                    co_return boost::system::result<void, E>(boost::system::in_place_error, error);
                  co_await forever();
                  co_return boost::system::result<void, E>();
                });
}

class ReturnedError : public supervisor_fixture {
 protected:
  event_reason reason_of(child_spec child) {
    events.clear();
    auto s = spec();
    s.children = {std::move(child)};
    auto sup = start(std::move(s));
    stop(sup);
    auto const t = of_kind(supervisor_event_kind::child_terminated);
    if (t.empty()) {
      ADD_FAILURE() << "no child_terminated";
      return {};
    }
    EXPECT_EQ(decision(t[0]), "restart");
    return t[0].reason;
  }
};

TEST_F(ReturnedError, StringIsItsMessage) {
  auto const r = reason_of(fails_once("w", std::string("disk full")));
  EXPECT_EQ(r.kind, reason_kind::error);
  EXPECT_EQ(r.message, "disk full");
  EXPECT_EQ(r.exception_type, "");
  EXPECT_EQ(r.error_type, "");
  EXPECT_EQ(r.error_category, "");
  EXPECT_FALSE(r.error_code);
  EXPECT_EQ(to_string(r), "error: disk full");
}

TEST_F(ReturnedError, ErrorCodeIsCategoryCodeAndMessage) {
  auto const r = reason_of(fails_once(
      "w", boost::system::errc::make_error_code(boost::system::errc::no_space_on_device)));
  EXPECT_EQ(r.kind, reason_kind::error);
  EXPECT_EQ(r.error_category, "generic");
  EXPECT_EQ(r.error_code, ENOSPC);
  EXPECT_EQ(r.message, std::strerror(ENOSPC));
  EXPECT_EQ(to_string(r), std::string("error: generic: ") + std::strerror(ENOSPC));
}

TEST_F(ReturnedError, StdErrorCodeToo) {
  auto const r = reason_of(fails_once("w", std::make_error_code(std::errc::connection_refused)));
  EXPECT_EQ(r.kind, reason_kind::error);
  EXPECT_EQ(r.error_category, "generic");
  EXPECT_EQ(r.error_code, ECONNREFUSED);
  EXPECT_EQ(r.message, std::strerror(ECONNREFUSED));
}

TEST_F(ReturnedError, FormattableIsFormatted) {
  auto const r = reason_of(fails_once("w", http_status{503}));
  EXPECT_EQ(r.kind, reason_kind::error);
  EXPECT_EQ(r.message, "HTTP 503");
  EXPECT_EQ(r.error_type, "");
  auto const n = reason_of(fails_once("n", 7));
  EXPECT_EQ(to_string(n), "error: 7");
}

TEST_F(ReturnedError, AnythingElseIsItsTypeName) {
  auto const r = reason_of(fails_once("w", opaque_error{}));
  EXPECT_EQ(r.kind, reason_kind::error);
  EXPECT_EQ(r.error_type, "returned_error_test::opaque_error");
  EXPECT_EQ(r.message, "");
  EXPECT_EQ(to_string(r), "error: returned_error_test::opaque_error");
}

/// A run that co_awaits manage itself, whose work returns `error` in its
/// first incarnation: the core's manage describes it in the disconnect.
template <class E>
child_spec run_manage_fails_once(std::string id, E error) {
  return worker(std::move(id), [error](child_context& c) -> asio::awaitable<void> {
    auto work = [](E e, bool fail) -> asio::awaitable<boost::system::result<void, E>> {
      if (fail) co_return boost::system::result<void, E>(boost::system::in_place_error, e);
      co_await forever();
      co_return boost::system::result<void, E>();
    };
    (void)co_await manage(std::move(c.device), work(error, c.incarnation == 1));
  });
}

TEST_F(ReturnedError, ARunUsingManageReportsTheValueToo) {
  auto const s = reason_of(run_manage_fails_once("r", std::string("disk full")));
  EXPECT_EQ(s.kind, reason_kind::error);
  EXPECT_EQ(s.message, "disk full");
  EXPECT_EQ(s.exception_type, "");
  EXPECT_EQ(to_string(s), "error: disk full");
  auto const e = reason_of(run_manage_fails_once(
      "e", boost::system::errc::make_error_code(boost::system::errc::no_space_on_device)));
  EXPECT_EQ(e.kind, reason_kind::error);
  EXPECT_EQ(e.error_category, "generic");
  EXPECT_EQ(e.error_code, ENOSPC);
  EXPECT_EQ(e.message, std::strerror(ENOSPC));
  auto const o = reason_of(run_manage_fails_once("o", opaque_error{}));
  EXPECT_EQ(o.error_type, "returned_error_test::opaque_error");
}

TEST_F(ReturnedError, DescribedOnlyWhenSomeoneListens) {
  // No observer and a logger that is off: a crash costs no formatting.
  auto s = spec();
  s.observer = nullptr;
  logger->set_level(spdlog::level::off);
  s.children = {fails_once("w", http_status{503})};
  returned_error_test::formatted = 0;
  auto sup = start(std::move(s));
  EXPECT_EQ(info(sup, "w")->incarnation, 2u);  // it did fail and restart
  EXPECT_EQ(returned_error_test::formatted, 0);
  stop(sup);
  // The same with a listener: described once.
  auto l = spec();
  l.children = {fails_once("w", http_status{503})};
  auto sup2 = start(std::move(l));
  EXPECT_EQ(returned_error_test::formatted, 1);
  stop(sup2);
}

TEST_F(ReturnedError, MessageThatArrivesWithTheErrorWins) {
  // As in manage: a linked fault heard as the work returns its error is what
  // ended the child; the error is not described.
  device dep;
  device_id const dep_id = dep.id();
  auto s = spec();
  s.children = {worker(
      "w", [&dep](child_context& c) -> asio::awaitable<boost::system::result<void, std::string>> {
        if (c.incarnation == 1) {
          (void)c.device.link_line(dep.line(), link_mode::monitor);
          dep.disconnect(fault::error());
          co_return boost::system::result<void, std::string>(boost::system::in_place_error, "late");
        }
        co_await forever();
        co_return boost::system::result<void, std::string>();
      })};
  auto sup = start(std::move(s));
  auto const t = of_kind(supervisor_event_kind::child_terminated);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].reason.kind, reason_kind::cascade);
  EXPECT_EQ(t[0].reason.cascade_from, dep_id);
  EXPECT_EQ(t[0].reason.message, "");
  stop(sup);
}

}  // namespace
