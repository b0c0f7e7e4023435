#pragma once
// The whole backplane API in one include.

#include <backplane/crash.hpp>
#include <backplane/describe.hpp>
#include <backplane/detail/config_check.hpp>
#include <backplane/device.hpp>
#include <backplane/device_id.hpp>
#include <backplane/fault.hpp>
#include <backplane/format.hpp>
#include <backplane/line.hpp>
#include <backplane/link_error.hpp>
#include <backplane/link_mode.hpp>
#include <backplane/manage.hpp>
#include <backplane/message.hpp>
#include <backplane/returned_error.hpp>
#include <backplane/spawn.hpp>
#include <backplane/spawn_managed.hpp>
#include <backplane/watch.hpp>
#include <backplane/work.hpp>
