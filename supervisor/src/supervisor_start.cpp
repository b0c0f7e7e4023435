// The supervisor's construction and the start of its children: the declared
// ones in order, and one incarnation of one child.

#include "supervisor_impl.hpp"

#include "reasons.hpp"
#include "report_delivery.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>

#include <exception>
#include <stdexcept>

namespace asio = boost::asio;

namespace backplane::detail {

namespace {

/// A new strand for one child, on the execution context behind `ex`. When
/// `ex` is itself a strand (the supervisor's, on a multi-threaded context),
/// the child's strand is made on the executor inside it, not nested in it:
/// children run beside their supervisor and each other, each on its own
/// strand. (Nesting would also put a large executor inside any_io_executor,
/// whose shared-ownership path uses fences that ThreadSanitizer does not
/// model.) An executor of any other type gets no strand: the children then
/// share `ex` itself.
asio::any_io_executor child_executor(asio::any_io_executor const& ex) {
  using io_ex = asio::io_context::executor_type;
  using pool_ex = asio::thread_pool::executor_type;
  if (auto const* s = ex.target<asio::strand<io_ex>>())
    return asio::make_strand(s->get_inner_executor());
  if (auto const* e = ex.target<io_ex>()) return asio::make_strand(*e);
  if (auto const* s = ex.target<asio::strand<pool_ex>>())
    return asio::make_strand(s->get_inner_executor());
  if (auto const* e = ex.target<pool_ex>()) return asio::make_strand(*e);
  return ex;
}

}  // namespace

supervisor_impl::supervisor_impl(asio::any_io_executor ex, supervisor_spec spec, std::string path,
                                 supervisor_spec const* parent)
    : ex_(std::move(ex)),
      spec_(std::move(spec)),
      path_(std::move(path)),
      window_(spec_.max_restarts, spec_.period),
      rng_(static_cast<std::minstd_rand::result_type>(std::random_device{}())) {
  if (parent) {
    if (!spec_.clock) spec_.clock = parent->clock;
    if (!spec_.logger) spec_.logger = parent->logger;
    if (!spec_.observer) spec_.observer = parent->observer;
    if (!spec_.format) spec_.format = parent->format;
    if (!spec_.child_strands) spec_.child_strands = parent->child_strands;
  }
  clock_ = spec_.clock ? spec_.clock : steady_supervisor_clock();
  deadline_.emplace(clock_, ex_);
  logger_ = spec_.logger ? spec_.logger : default_report_logger();
  spec_.clock = clock_;
  spec_.logger = logger_;
  json_ = spec_.format.value_or(report_format::text) == report_format::json;
  child_strands_ = spec_.child_strands.value_or(true);
  spec_.format = json_ ? report_format::json : report_format::text;
  spec_.child_strands = child_strands_;
  id_ = dev_.id();
  line_ = dev_.line();
  for (auto& c : spec_.children) add_record(c);
  // The declared specs live on in the records; nested ones read `spec_` only
  // for the inherited options.
  spec_.children.clear();
}

void supervisor_impl::adopt_device(device d, device* home) {
  dev_ = std::move(d);
  set_home(home);
  id_ = dev_.id();
  line_ = dev_.line();
}

std::optional<start_failure> supervisor_impl::start_declared() {
  for (auto it = children_.begin(); it != children_.end();) {
    child_record& r = **it++;  // advanced first: an ignored temporary child goes
    event_reason why;
    switch (start_incarnation(r, why)) {
      case start_outcome::started: break;
      case start_outcome::ignored:
        // OTP: a temporary child that says ignore is not kept.
        if (r.spec.restart == restart_type::temporary) remove(&r);
        break;
      case start_outcome::failed:
        report(supervisor_event_kind::start_error, r, why, supervisor_action::fail_start);
        stopping_ = true;
        exit_.fault = fault::error();
        return start_failure{r.spec.id, to_string(why)};
    }
  }
  return std::nullopt;
}

void supervisor_impl::kill_all() {
  if (ended_) return;
  killed_ = true;
  exit_.fault = fault::error();
  stopping_ = true;
  wake();
}

void supervisor_impl::started() {
  if (spec_.on_start) spec_.on_start(supervisor_access::make(shared_from_this()));
}

child_record* supervisor_impl::add_record(child_spec spec) {
  auto r = std::make_unique<child_record>();
  r->identity =
      std::make_shared<child_identity>(child_identity{path_, spec.id, std::move(spec.start)});
  spec.start = nullptr;
  r->spec = std::move(spec);
  child_record* p = r.get();
  by_id_[p->spec.id] = p;
  p->pos = children_.insert(children_.end(), std::move(r));
  return p;
}

start_outcome supervisor_impl::start_incarnation(child_record& r, event_reason& why,
                                                 std::any* info) {
  ++r.incarnation;
  if (child_strands_ && !r.strand)
    r.strand = std::make_unique<asio::any_io_executor>(child_executor(ex_));
  auto run = std::make_shared<child_run>(r.identity, r.incarnation,
                                         child_strands_ ? *r.strand : ex_, &spec_);
  dev_.link(run->dev, link_mode::peer);
  run->describe_errors = reasons_wanted();
  backplane::line l = run->dev.line();
  std::optional<asio::awaitable<void>> body;
  std::unique_ptr<detail::managed_launch> managed;
  bool ignored = false;
  try {
    if (!r.identity->start) throw std::logic_error("the child's start function was released");
    start_result res = r.identity->start(run->ctx);
    if (!res.ok()) {
      why = start_error_reason(res.error().reason);
    } else if (res.ignored()) {
      ignored = true;
    } else if (!res.managed()) {
      body.emplace(res.take_run());
    } else {
      managed = res.take_managed();
    }
    if (info) *info = res.take_info();
  } catch (...) {
    why = exception_reason(std::current_exception());
  }
  if (!body && !managed) {
    // Forgotten before its device goes (with `run`, below), so nobody
    // hears of it unless the start function let it go first.
    retire(l);
    if (!ignored) return start_outcome::failed;
    // Not a failure: whoever the start function linked it to hears a clean end.
    if (run->dev.valid()) run->dev.disconnect();
    return start_outcome::ignored;
  }
  try {
    launch(run, std::move(body), std::move(managed));
  } catch (...) {
    // Asio could not start the child's coroutine (std::bad_alloc): a failed
    // start like any other, counted and retried. Nothing of it runs.
    why = exception_reason(std::current_exception());
    retire(l);
    return start_outcome::failed;
  }
  // Never called again: what it captured goes now, not when the child ends.
  if (r.spec.restart == restart_type::temporary) r.identity->start = nullptr;
  r.ln = l;
  r.dev = l.id();
  r.status = child_status::running;
  r.run = run;
  if (r.spec.backoff) r.backoff.started(clock_->now());
  by_device_.insert(r.dev, &r);
  return start_outcome::started;
}

}  // namespace backplane::detail
