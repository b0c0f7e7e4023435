// Defines the one symbol that names the Asio configuration this library was built with
// (backplane/detail/config_check.hpp says why).
#include <backplane/detail/config_check.hpp>

extern "C" {
int const BACKPLANE_DETAIL_CONFIG_SYMBOL = 1;
}
