#pragma once
// A supervisor test bench: one io_context driven by hand, a manual clock,
// a muted logger, and every event recorded as a value.

#include "support/run_until_idle.hpp"

#include <backplane/backplane.hpp>
#include <backplane/supervisor.hpp>

#include <boost/asio/io_context.hpp>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace backplane::test {

class supervisor_fixture : public ::testing::Test {
 protected:
  boost::asio::io_context ctx;
  std::shared_ptr<manual_clock> clock = std::make_shared<manual_clock>();
  std::vector<supervisor_event> events;
  std::shared_ptr<spdlog::logger> logger =
      std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());

  supervisor_spec spec(std::string name = "sup") {
    supervisor_spec s;
    s.name = std::move(name);
    s.clock = clock;
    s.logger = logger;
    s.observer = [this](supervisor_event const& e) { events.push_back(e); };
    s.child_strands = false;
    return s;
  }

  std::size_t idle() { return run_until_idle(ctx); }

  std::vector<supervisor_event> of_kind(supervisor_event_kind k) const {
    std::vector<supervisor_event> out;
    for (auto const& e : events)
      if (e.event == k) out.push_back(e);
    return out;
  }
};

}  // namespace backplane::test
