// The advanced API (custom allocator, frame header) is exported by every libzstd this builds against (1.5+).
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
