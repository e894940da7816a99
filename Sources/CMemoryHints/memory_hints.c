// Most of the module is its header (static inline functions); the calls Swift cannot make itself are here.
#ifdef __linux__
#define _GNU_SOURCE
#include <sys/mman.h>
#endif
#include "memory_hints.h"

void *rdb_move_mapping(void *old, size_t oldSize, size_t newSize, void *to) {
#ifdef __linux__
    void *p = mremap(old, oldSize, newSize, MREMAP_MAYMOVE | MREMAP_FIXED, to);
    return p == MAP_FAILED ? 0 : p;
#else
    (void)old; (void)oldSize; (void)newSize; (void)to;
    return 0;
#endif
}

int rdb_populate_for_writing(void *p, size_t size) {
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
    return madvise(p, size, MADV_POPULATE_WRITE);
#else
    (void)p; (void)size;
    return -1;
#endif
}
