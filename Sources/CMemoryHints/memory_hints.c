// The module is its header (static inline functions); this file gives SwiftPM a C target to build.
#include "memory_hints.h"
