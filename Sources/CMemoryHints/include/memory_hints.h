#ifndef RDB_MEMORY_HINTS_H
#define RDB_MEMORY_HINTS_H

#include <stddef.h>
#include <stdint.h>

/// Asks the CPU to start loading the cache line at `p` (for reading, kept in every cache level) without
/// waiting for it: a hash-table probe issued a few lookups ahead of its use overlaps its cache miss with
/// other work. A hint: `p` may be any address, it is never dereferenced.
static inline void rdb_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

/// The same for a line about to be written (fetched for ownership, so that the store does not wait for it).
static inline void rdb_prefetch_write(void *p) { __builtin_prefetch(p, 1, 3); }

/// A word of memory shared by threads: read (acquire: what was written before it was set is seen), and set
/// from `expected` to `desired` if it still holds `expected` (returns whether it did).
static inline uint64_t rdb_load_acquire(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline int rdb_compare_exchange(uint64_t *p, uint64_t expected, uint64_t desired) {
    return __atomic_compare_exchange_n(p, &expected, desired, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/// Moves the pages of the mapping at `old` (`oldSize` bytes) to `to`, replacing what is mapped there, and makes
/// it `newSize` bytes (the bytes past `oldSize` zero): a grown mapping without copying its bytes (Linux
/// `mremap`). Returns `to`, or NULL when it cannot (then nothing changed).
void *rdb_move_mapping(void *old, size_t oldSize, size_t newSize, void *to);

/// Backs the mapped pages of `p` (`size` bytes) now, writable (Linux `MADV_POPULATE_WRITE`): memory that is
/// read before it is written would otherwise fault twice (a shared zero page, then a page of its own).
/// Returns 0, or -1 when it cannot (nothing lost: the pages are backed as they are touched).
int rdb_populate_for_writing(void *p, size_t size);

#endif
