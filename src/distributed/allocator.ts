/**
 * Allocator settings for the processes that move large values: cluster workers and the
 * redis-server weft starts. Environment variables, because the C allocators read them once, at
 * process start; they are given to processes weft spawns, and README gives them for workers
 * started by hand. Settings the environment already has win.
 *
 * Why: a value of megabytes is allocated fresh several times on its way (made by its task,
 * encoded into shared memory, received by Redis, copied for each consumer). With the default
 * settings each allocation maps new 4 KiB pages and each free unmaps them, so every value pays
 * a page fault per 4 KiB, and page faults are slow on virtual machines. Measured on a 2-core VM
 * (W6, 64 values of 4 MiB): a worker's CPU per round fell from ~950 ms to ~600 ms and Redis's
 * from ~850 ms to ~150 ms with both settings below.
 */

/**
 * glibc malloc for a cluster worker: blocks up to 32 MiB come from the heap (reused after a
 * free) rather than from a fresh mapping each; the heap grows 64 MiB at a time, is given back
 * only when 512 MiB lie free at its top, and uses transparent huge pages where the kernel
 * allows them on request (`madvise`). Ignored where the C library is not glibc.
 */
const workerTunables: Record<string, string> = {
  'glibc.malloc.hugetlb': '1',
  'glibc.malloc.mmap_threshold': String(32 * 1024 * 1024),
  'glibc.malloc.top_pad': String(64 * 1024 * 1024),
  'glibc.malloc.trim_threshold': String(512 * 1024 * 1024),
};

/** `GLIBC_TUNABLES` for a cluster worker: `env`'s own tunables, plus ours for the rest. */
export function workerAllocatorEnv(env: NodeJS.ProcessEnv = process.env): {
  GLIBC_TUNABLES: string;
} {
  const own = (env.GLIBC_TUNABLES ?? '').split(':').filter((entry) => entry.includes('='));
  const named = new Set(own.map((entry) => entry.slice(0, entry.indexOf('='))));
  const ours = Object.entries(workerTunables)
    .filter(([name]) => !named.has(name))
    .map(([name, value]) => `${name}=${value}`);
  return { GLIBC_TUNABLES: [...own, ...ours].join(':') };
}

/**
 * A line for the log of a worker on Linux whose environment lacks the settings above, or
 * undefined: said once, when it first stores a value of a megabyte or more.
 */
export function allocatorHint(
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
): string | undefined {
  const wanted = workerAllocatorEnv(env).GLIBC_TUNABLES;
  if (platform !== 'linux' || wanted === env.GLIBC_TUNABLES) return undefined;
  return `this worker stores values of megabytes with the C library's default allocator settings, which map fresh memory for each one; start it with GLIBC_TUNABLES=${wanted} to reuse memory instead (README, "Big values": 2-3x faster on a VM).`;
}

/**
 * jemalloc for a redis-server that stores large values: transparent huge pages, and freed pages
 * kept for reuse rather than given back (a 4 MiB SET cost Redis 13.9 ms of CPU with the
 * defaults, 5.8 ms with huge pages, ~1 ms when it reuses the memory of deleted values). Redis
 * advises against huge pages because a fork for persistence would copy them on write: weft's
 * own redis-server never forks (no RDB, no AOF), and keeps its memory only while it runs.
 * `JE_MALLOC_CONF` is the name in builds with Redis's own prefixed jemalloc.
 */
export function redisAllocatorEnv(env: NodeJS.ProcessEnv = process.env): {
  MALLOC_CONF: string;
  JE_MALLOC_CONF: string;
} {
  const conf =
    env.MALLOC_CONF ?? env.JE_MALLOC_CONF ?? 'thp:always,dirty_decay_ms:-1,muzzy_decay_ms:-1';
  return { MALLOC_CONF: conf, JE_MALLOC_CONF: conf };
}
