"""The python-diskcache peer of `npm run bench`: one workload per call, printed as one JSON line.

    /usr/bin/python3 bench/peer/diskcache_bench.py <workload> <directory> [args...]

Workloads (the same as the cacheness side in bench/*.ts, see issue 21):
  core         10,000 small puts (ops/s), get hit p50/p99 and miss p50 (us)
  arrays       64 MiB float64 + int32 numpy arrays: put/get MB/s, stored / raw
  table        1M-row pandas DataFrame (int64, float64, categorical utf8), pickled: put/get MB/s, stored
  management   10,000 entries: list all with sizes, count + total size, expire 5,000 (ms)
  memoize      memoised call: hit p50/p99, miss p50 and the miss beyond the function (us)
  processes    4 processes x 2,500 keys: wall ms and lost count
  throughput   numpy float64 put/get MB/s per size: throughput <dir> <size,size,...> <reps,reps,...>

Exit status 3 with a one-line reason on stderr when a package is missing (the bench prints it
as "python-diskcache peer skipped: ..."). Debian packages: python3-diskcache, python3-numpy,
python3-pandas.
"""
import json
import os
import subprocess
import sys
import time

try:
    import diskcache
except ImportError as error:
    sys.stderr.write(f"no module diskcache ({error}); apt-get install python3-diskcache\n")
    sys.exit(3)

MiB = 1024 * 1024
N = 10_000


def need(module, package):
    try:
        return __import__(module)
    except ImportError as error:
        sys.stderr.write(f"no module {module} ({error}); apt-get install {package}\n")
        sys.exit(3)


def key_of(i):
    return ("user", i, "region", "eu-west", "version", 3)


def value_of(i):
    return {"id": i, "name": f"user-{i}", "email": f"user{i}@example.com", "tags": ["alpha", "beta", "gamma"],
            "score": i / 7, "active": i % 2 == 0, "created": "2024-01-01T00:00:00Z"}


def median(xs):
    return sorted(xs)[len(xs) // 2]


def pct(sorted_xs, p):
    return sorted_xs[min(len(sorted_xs) - 1, int(len(sorted_xs) * p / 100))]


def latencies(f, n):
    out = []
    for i in range(n):
        t = time.perf_counter()
        f(i)
        out.append((time.perf_counter() - t) * 1e6)
    out.sort()
    return out


def stored_size(cache, key):
    # The value's bytes as diskcache accounts them: the file for large values, the blob inline.
    return cache._sql("SELECT size FROM Cache WHERE key = ? AND raw = 1", (key,)).fetchone()[0]


def core(directory):
    d = diskcache.Cache(directory)
    t = time.perf_counter()
    for i in range(N):
        d.set(key_of(i), value_of(i))
    put = N / (time.perf_counter() - t)
    hits = latencies(lambda i: d.get(key_of(i)), N)
    misses = latencies(lambda i: d.get(key_of(N + i)), N)
    d.close()
    return {"putOps": put, "hitP50": pct(hits, 50), "hitP99": pct(hits, 99), "missP50": pct(misses, 50)}


def put_get(d, key, value, reps, check):
    puts, gets = [], []
    for _ in range(reps):
        t = time.perf_counter()
        d.set(key, value)
        puts.append(time.perf_counter() - t)
        t = time.perf_counter()
        back = d.get(key)
        gets.append(time.perf_counter() - t)
        if back is None or not check(back):
            raise RuntimeError(f"{key}: missed or changed")
    return median(puts), median(gets)


def arrays(directory):
    np = need("numpy", "python3-numpy")
    n64 = 64 * MiB // 8
    i = np.arange(n64, dtype=np.float64)
    f64 = np.sin(i / 1000) * 100 + np.random.random(n64) * 1e-3
    i32 = np.arange(64 * MiB // 4, dtype=np.int32)
    d = diskcache.Cache(directory)
    out = {}
    for name, value in (("f64", f64), ("i32", i32)):
        put, get = put_get(d, name, value, 3, lambda back: back.shape == value.shape and back.dtype == value.dtype)
        out[name] = {"raw": value.nbytes, "put": put, "get": get, "stored": stored_size(d, name)}
    d.close()
    return out


def table(directory):
    np = need("numpy", "python3-numpy")
    pd = need("pandas", "python3-pandas")
    rows = 1_000_000
    names = [f"category_{i}" for i in range(50)]
    codes = np.random.randint(0, 50, rows).astype(np.int8)
    frame = pd.DataFrame({
        "id": np.arange(rows, dtype=np.int64),
        "value": np.random.random(rows) * 1000,
        "category": pd.Categorical.from_codes(codes, categories=names)
    })
    # Logical size as bench/formats.ts counts it: 8 + 8 bytes, the category's UTF-8 and a 4-byte offset.
    lengths = np.array([len(s) for s in names])
    logical = 20 * rows + int(lengths[codes].sum())
    d = diskcache.Cache(directory)
    put, get = put_get(d, "table", frame, 3, lambda back: len(back) == rows)
    stored = stored_size(d, "table")
    d.close()
    return {"rows": rows, "logical": logical, "put": put, "get": get, "stored": stored}


def management(directory, runs=7, stats_runs=101):
    # cull_limit=0: otherwise every set removes up to 10 expired entries, and expire() finds fewer.
    d = diskcache.Cache(directory, cull_limit=0)
    small = {"id": 1, "name": "user-1", "email": "user1@example.com", "tags": ["alpha", "beta"], "score": 1 / 7}
    with d.transact():
        for i in range(N):
            d.set(key_of(i), dict(small, id=i), expire=0.001 if i % 2 == 0 else None)
    time.sleep(0.02)

    def listing():
        # What `list()` gives: every entry's key (decoded), size, times and hits.
        rows = d._sql("SELECT key, raw, size, store_time, access_time, expire_time, access_count FROM Cache"
                      " ORDER BY rowid").fetchall()
        return [(d._disk.get(k, raw), size, st, at, et, hits) for (k, raw, size, st, at, et, hits) in rows]

    def timed(f, n=runs):
        out = []
        for _ in range(n):
            t = time.perf_counter()
            f()
            out.append((time.perf_counter() - t) * 1000)
        return median(out), min(out)

    if len(listing()) != N:
        raise RuntimeError("listing lost entries")
    lst, lst_best = timed(listing)
    # A count is microseconds: many more samples than a listing, as bench/management.ts takes.
    stats, _ = timed(lambda: (len(d), d.volume()), stats_runs)
    t = time.perf_counter()
    removed = d.expire()
    cleanup = (time.perf_counter() - t) * 1000
    d.close()
    return {"list": lst, "listBest": lst_best, "stats": stats, "cleanup": cleanup, "removed": removed}


def memoize(directory, keys=1_000, rounds=10):
    d = diskcache.Cache(directory)

    def compute(user, region):
        return {"id": user, "name": f"user-{user}", "email": f"user{user}@example.com",
                "tags": ["alpha", "beta", "gamma"], "score": user / 7, "active": user % 2 == 0,
                "created": "2024-01-01T00:00:00Z"}

    lookup = d.memoize(name="lookup")(compute)
    plain = []
    for r in range(rounds):
        for i in range(keys):
            t = time.perf_counter()
            compute(i, "eu-west")
            plain.append((time.perf_counter() - t) * 1e6)
    misses = latencies(lambda i: lookup(i, "eu-west"), keys)
    hits = []
    for r in range(rounds):
        hits.extend(latencies(lambda i: lookup(i, "eu-west"), keys))
    hits.sort()
    plain.sort()
    d.close()
    return {"hit": {"p50": pct(hits, 50), "p99": pct(hits, 99)}, "miss": {"p50": pct(misses, 50), "p99": pct(misses, 99)},
            "plain": {"p50": pct(plain, 50), "p99": pct(plain, 99)},
            "missBeyond": {"p50": pct(misses, 50) - pct(plain, 50), "p99": pct(misses, 99) - pct(plain, 99)}}


PROCESSES = 4
KEYS_PER_PROCESS = 2_500


def process_worker(directory, p):
    d = diskcache.Cache(directory)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()
    for i in range(KEYS_PER_PROCESS):
        d.set(("proc", p, i), value_of(p * KEYS_PER_PROCESS + i))
    sys.stdout.write(f"{time.time()}\n")
    sys.stdout.flush()
    d.close()


def processes(directory):
    diskcache.Cache(directory).close()  # created once, before the workers race to open it
    workers = [subprocess.Popen([sys.executable, __file__, "process-worker", directory, str(p)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for p in range(PROCESSES)]
    for w in workers:
        if w.stdout.readline().strip() != "ready":
            raise RuntimeError("a worker failed to start")
    start = time.time()
    for w in workers:
        w.stdin.write("go\n")
        w.stdin.flush()
    ends = [float(w.stdout.readline()) for w in workers]
    for w in workers:
        w.wait()
    d = diskcache.Cache(directory)
    lost = sum(1 for p in range(PROCESSES) for i in range(KEYS_PER_PROCESS)
               if d.get(("proc", p, i)) != value_of(p * KEYS_PER_PROCESS + i))
    d.close()
    return {"wall": (max(ends) - start) * 1000, "lost": lost, "keys": PROCESSES * KEYS_PER_PROCESS}


def throughput(directory, sizes, reps):
    np = need("numpy", "python3-numpy")
    d = diskcache.Cache(directory)
    out = []
    for size, rep in zip(sizes, reps):
        n = size // 8
        i = np.arange(n, dtype=np.float64)
        value = np.sin(i / 1000) * 100 + np.random.random(n) * 1e-3
        put, get = put_get(d, f"size-{size}", value, rep, lambda back: back.shape == value.shape)
        d.delete(f"size-{size}")
        out.append({"size": size, "put": size / 1e6 / put, "get": size / 1e6 / get})
    d.close()
    return out


def main(argv):
    workload, directory = argv[1], argv[2]
    if workload == "process-worker":
        process_worker(directory, int(argv[3]))
        return
    ints = lambda s: [int(x) for x in s.split(",")]
    run = {
        "core": lambda: core(directory),
        "arrays": lambda: arrays(directory),
        "table": lambda: table(directory),
        "management": lambda: management(directory),
        "memoize": lambda: memoize(directory),
        "processes": lambda: processes(directory),
        "throughput": lambda: throughput(directory, ints(argv[3]), ints(argv[4])),
    }.get(workload)
    if run is None:
        sys.stderr.write(f"unknown workload {workload!r}\n")
        sys.exit(2)
    print(json.dumps({"diskcache": diskcache.__version__, "result": run()}))


if __name__ == "__main__":
    main(sys.argv)
