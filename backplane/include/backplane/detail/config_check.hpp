#pragma once
// Not API. Makes a translation unit whose Asio configuration differs from the library's fail
// to link, instead of corrupting Asio's per-thread state at run time.
//
// Two settings change Asio's layout or its reactor and so must be the same in every
// translation unit of a program that links backplane:
//
// - BOOST_ASIO_RECYCLING_ALLOCATOR_CACHE_SIZE: the size of the per-thread cache of handler and
//   coroutine-frame memory (thread_info_base). A unit that disagrees reads and frees that
//   cache with another layout: "double free or corruption" at best.
// - BOOST_ASIO_HAS_IO_URING and BOOST_ASIO_DISABLE_EPOLL: which reactor an io_context uses
//   and which operation types its services define.
//
// The backplane target passes its settings to its users as PUBLIC compile definitions, so a
// program built through CMake gets them. This header guards the rest: every public header
// includes it, and it references `backplane_config_cache<N>_uring<0|1>_epoll<0|1>`, which only
// the library defines (src/config_check.cpp), for the settings it was built with. A unit
// built otherwise reports, at link time, an undefined reference to the name of its own
// settings; rebuild it with the library's definitions (link it to backplane::backplane) or
// rebuild the library with the unit's (BACKPLANE_ASIO_RECYCLING_CACHE, BACKPLANE_ASIO_IO_URING).

#include <boost/asio/detail/config.hpp>
#include <boost/asio/detail/thread_info_base.hpp>  // defines Asio's default cache size

#define BACKPLANE_DETAIL_CAT2(a, b) a##b
#define BACKPLANE_DETAIL_CAT(a, b) BACKPLANE_DETAIL_CAT2(a, b)

#if defined(BOOST_ASIO_HAS_IO_URING)
#define BACKPLANE_DETAIL_CONFIG_URING _uring1
#else
#define BACKPLANE_DETAIL_CONFIG_URING _uring0
#endif
#if defined(BOOST_ASIO_DISABLE_EPOLL)
#define BACKPLANE_DETAIL_CONFIG_EPOLL _epoll0
#else
#define BACKPLANE_DETAIL_CONFIG_EPOLL _epoll1
#endif

/// backplane_config_cache8_uring0_epoll1 for the default build. The cache size must be a plain
/// integer literal.
#define BACKPLANE_DETAIL_CONFIG_SYMBOL                                                             \
  BACKPLANE_DETAIL_CAT(                                                                            \
      BACKPLANE_DETAIL_CAT(                                                                        \
          BACKPLANE_DETAIL_CAT(backplane_config_cache, BOOST_ASIO_RECYCLING_ALLOCATOR_CACHE_SIZE), \
          BACKPLANE_DETAIL_CONFIG_URING),                                                          \
      BACKPLANE_DETAIL_CONFIG_EPOLL)

extern "C" {
extern int const BACKPLANE_DETAIL_CONFIG_SYMBOL;
}

namespace backplane::detail {
namespace {
// Emitted in every unit that includes a public header (`used`), so the reference reaches the
// linker even when nothing else would.
[[gnu::used]] int const* const config_check_reference = &BACKPLANE_DETAIL_CONFIG_SYMBOL;
}  // namespace
}  // namespace backplane::detail
