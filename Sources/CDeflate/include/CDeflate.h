// The module's one header: libdeflate's API, from the vendored upstream tree (README.md).
#include "../vendor/libdeflate/libdeflate.h"
