#pragma once
// The whole supervisor API in one include.

#include <backplane/supervisor/child_spec.hpp>
#include <backplane/supervisor/clock.hpp>
#include <backplane/supervisor/dynamic_supervisor.hpp>
#include <backplane/supervisor/errors.hpp>
#include <backplane/supervisor/events.hpp>
#include <backplane/supervisor/pool_errors.hpp>
#include <backplane/supervisor/supervisor.hpp>
#include <backplane/supervisor/supervisor_spec.hpp>
#include <backplane/supervisor/worker_pool.hpp>
