# W6 on dask.distributed, the anchor: a LocalCluster of 2 worker processes (1 thread each), 64 tasks
# each making 4 MiB, each consumed by a task returning its length, then one task summing them.
# Prints JSON: {"ms": [wall ms per round]}. Debian's python3-distributed.
import json
import sys
import time

from dask.distributed import Client, LocalCluster


def make(size, fill):
    return bytes([fill]) * size


def length(value):
    return len(value)


def total(lengths):
    return sum(lengths)


if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    n, size = 64, 4 * 1024 * 1024
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
        client.submit(total, [1]).result()  # warm up
        times = []
        for r in range(rounds):
            start = time.perf_counter()
            made = [client.submit(make, size, i % 256, pure=False) for i in range(n)]
            lengths = [client.submit(length, m, pure=False) for m in made]
            result = client.submit(total, lengths, pure=False).result()
            times.append((time.perf_counter() - start) * 1000)
            assert result == n * size, result
            del made, lengths
        print(json.dumps({"ms": times}))
