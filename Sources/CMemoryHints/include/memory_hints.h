#ifndef RDB_MEMORY_HINTS_H
#define RDB_MEMORY_HINTS_H

/// Asks the CPU to start loading the cache line at `p` (for reading, kept in every cache level) without
/// waiting for it: a hash-table probe issued a few lookups ahead of its use overlaps its cache miss with
/// other work. A hint: `p` may be any address, it is never dereferenced.
static inline void rdb_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

#endif
