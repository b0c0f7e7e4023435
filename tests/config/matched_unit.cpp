// The control for mismatched_unit.cpp: the same program with the library's own configuration
// links and runs, so a failure of the mismatched one is the configuration check's doing.
#include <backplane/device.hpp>

int main() {
  backplane::device d;
  return d.valid() ? 0 : 1;
}
