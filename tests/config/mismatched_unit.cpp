// A translation unit built with an Asio configuration other than the library's
// (tests/config/CMakeLists.txt says which setting it flips). Linking it with backplane must
// fail on the configuration symbol: see backplane/detail/config_check.hpp.
#if defined(BACKPLANE_TEST_FLIP_CACHE)
#undef BOOST_ASIO_RECYCLING_ALLOCATOR_CACHE_SIZE
#define BOOST_ASIO_RECYCLING_ALLOCATOR_CACHE_SIZE BACKPLANE_TEST_FLIP_CACHE
#elif defined(BACKPLANE_TEST_FLIP_URING)
#if defined(BOOST_ASIO_HAS_IO_URING)
#undef BOOST_ASIO_HAS_IO_URING
#undef BOOST_ASIO_DISABLE_EPOLL
#else
#define BOOST_ASIO_HAS_IO_URING 1
#define BOOST_ASIO_DISABLE_EPOLL 1
#endif
#endif

#include <backplane/device.hpp>

int main() {
  backplane::device d;
  return d.valid() ? 0 : 1;
}
