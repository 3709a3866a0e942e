"""Drives bench/http (see run.sh): starts each server pinned to core 0, loads it with the same
wrk command pinned to core 1, samples its memory from /proc, and writes results.md."""
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FERRO = os.path.join(ROOT, "target/release/ferrostack")
HELLO = os.path.join(ROOT, "target/release/bench-hyper-hello")
VENV = os.path.join(ROOT, ".tools/venv/bin")
QUICK = "--quick" in sys.argv
DURATION = 5 if QUICK else 10
WORK_DURATION = 10 if QUICK else 16
SERVER_CORE, CLIENT_CORE = "0", "1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url, limit=20.0):
    start = time.monotonic()
    while time.monotonic() - start < limit:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return time.monotonic() - start
        except Exception:
            time.sleep(0.002)
    raise RuntimeError(f"{url} never became ready")


# Files written during the run are deleted only at its end. On this VM's disk (ext4 mounted with
# `discard`), deleting a few thousand files slows new durable writes for ~15 s afterwards
# (measured: 500-file probes went from ~9k to ~3k files/s and took 15 s to recover), long after
# `sync` returns; deleting one row's files right before the next row measured the deletion,
# not the server.
TRASH = []


def trash(path):
    """Deletes `path` at the end of the run if it is on the disk under test, now otherwise."""
    try:
        later = os.stat(path).st_dev == os.stat(ROOT).st_dev
    except FileNotFoundError:
        return
    if later:
        TRASH.append(path)
    else:
        shutil.rmtree(path, ignore_errors=True)


def empty_trash():
    while TRASH:
        shutil.rmtree(TRASH.pop(), ignore_errors=True)


def settle_disk(seconds=20):
    """Lets the disk finish what earlier work (the build, a previous run) left it doing."""
    os.sync()
    time.sleep(seconds)


def cpu_s(pids):
    """User + system CPU seconds the processes have used so far."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except FileNotFoundError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


def pids_of(proc):
    """The process and its children (gunicorn's workers)."""
    out = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    return [proc.pid] + [int(p) for p in out]


def mem_kib(pids, field):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


class Server:
    def __init__(self, name, argv, port, ready_path="/healthz", env=None):
        self.name, self.port = name, port
        self.dir = tempfile.mkdtemp(prefix="bench-http-")
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CORE] + argv,
            cwd=self.dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
        )
        self.ready_s = wait_ready(f"http://127.0.0.1:{port}{ready_path}")
        time.sleep(1.0)
        self.idle_rss_kib = mem_kib(pids_of(self.proc), "VmRSS")
        self.cpu_at_start = cpu_s(pids_of(self.proc))

    def cpu_used_s(self):
        return cpu_s(pids_of(self.proc)) - self.cpu_at_start

    def peak_rss_mib(self):
        return mem_kib(pids_of(self.proc), "VmHWM") / 1024

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        trash(self.dir)
        for path in getattr(self, "scratch", ()):
            trash(path)


UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def to_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    return float(m.group(1)) * UNITS[m.group(2)]


def wrk(url, connections, duration):
    cmd = ["taskset", "-c", CLIENT_CORE, "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s", url]
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    p50 = to_ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = to_ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    errors = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "requests": requests, "p50": p50, "p99": p99, "errors": errors.group(1) if errors else "", "non2xx": int(non2xx.group(1)) if non2xx else 0, "cmd": " ".join(cmd[3:])}


def ferrostack(work_delay="3s", log_dir="logs", name="ferrostack"):
    port = free_port()
    server = Server(name, [FERRO, "backend-api", "--host", "127.0.0.1", "--port", str(port), "--work-delay", work_delay, "--drain-delay", "0s", "--log-dir", log_dir], port)
    server.log_dir = os.path.join(server.dir, log_dir)
    return server


def ferrostack_tmpfs():
    """The same server with its log dir on tmpfs: what the server does when the disk is not
    the limit (a durable file per request costs an fsync)."""
    log_dir = tempfile.mkdtemp(prefix="bench-http-", dir="/dev/shm")
    server = ferrostack(log_dir=log_dir, name="ferrostack, log dir on tmpfs")
    server.scratch = [log_dir]
    return server


class RamDisk:
    """ext4 on a loop device whose backing file lives in RAM (/dev/shm): a real filesystem
    with its journal, fsync and rename paths, on a device whose cache flushes cost nothing,
    as on a datacenter NVMe drive with power-loss protection. Needs root (losetup, mount)."""

    def __init__(self, size_mib=2048):
        self.image = tempfile.mktemp(prefix="bench-ramdisk-", dir="/dev/shm")
        self.mount = tempfile.mkdtemp(prefix="bench-ramdisk-")
        self.loop = None
        with open(self.image, "wb") as f:
            f.truncate(size_mib * 1024 * 1024)
        subprocess.run(["mkfs.ext4", "-q", "-F", self.image], check=True)
        self.loop = subprocess.run(["losetup", "--find", "--show", self.image], check=True, capture_output=True, text=True).stdout.strip()
        subprocess.run(["mount", self.loop, self.mount], check=True)

    def close(self):
        subprocess.run(["umount", self.mount], check=False)
        if self.loop:
            subprocess.run(["losetup", "-d", self.loop], check=False)
        os.rmdir(self.mount)
        os.unlink(self.image)


def ferrostack_ramdisk():
    """The same server with its log dir on ext4 over a RAM disk (see RamDisk): every file
    still fsynced and renamed through a journaling filesystem, but flushes are free."""
    try:
        disk = RamDisk()
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"skipping the RAM-disk row: {e}", file=sys.stderr)
        return None
    server = ferrostack(log_dir=os.path.join(disk.mount, "logs"), name="ferrostack, log dir on ext4 over a RAM disk")
    server.cleanup = disk.close
    return server


def disk_limit(seconds=5, threads=64):
    """The disk's own rate of durable small files, as GET / writes them (create, write, fsync,
    rename), from 64 threads in parallel: the ceiling of GET / throughput on this disk."""
    import threading
    d = tempfile.mkdtemp(prefix="bench-disk-", dir=ROOT)
    count = [0] * threads
    stop = time.monotonic() + seconds

    def work(t):
        i = 0
        while time.monotonic() < stop:
            tmp = os.path.join(d, f".tmp-{t}-{i}")
            fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644)
            os.write(fd, b'{"level":"info","message":"Data processed successfully"}\n')
            os.fsync(fd)
            os.close(fd)
            os.rename(tmp, os.path.join(d, f"{t}-{i}.json"))
            i += 1
        count[t] = i

    ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    trash(d)
    return sum(count) / seconds


def burst_limit(files=5000, tries=3):
    """How fast this disk makes one burst of `files` new files durable another way than
    per-file fsyncs: every file created and written, then one `syncfs` for the whole
    filesystem (one journal commit and one cache flush for all of them; not something a server
    on a shared node should do), then the renames and one directory fsync. Best of `tries`,
    each on a settled disk."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    body = b'{"level":"info","message":"Data processed successfully"}\n'
    best = None
    for _ in range(tries):
        os.sync()
        time.sleep(2)
        d = tempfile.mkdtemp(prefix="bench-burst-", dir=ROOT)
        dfd = os.open(d, os.O_RDONLY)
        started = time.monotonic()
        for i in range(files):
            fd = os.open(f".tmp-{i}", os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644, dir_fd=dfd)
            os.write(fd, body)
            os.close(fd)
        if libc.syncfs(dfd) != 0:
            raise OSError(ctypes.get_errno(), "syncfs")
        for i in range(files):
            os.rename(f".tmp-{i}", f"{i}.json", src_dir_fd=dfd, dst_dir_fd=dfd)
        os.fsync(dfd)
        took = time.monotonic() - started
        os.close(dfd)
        trash(d)
        best = took if best is None else min(best, took)
    return best


def kernel_us_per_file(root, files=5120, batch=512):
    """System CPU time per durable file for the sequence the server's committer runs (create and
    write each file of a batch, start writeback of all, fdatasync each, rename each, one
    directory fsync), one thread: the filesystem's own share of a `GET /`, which no server code
    can shave. Python's own overhead is user time and is not counted."""
    import resource
    body = b'{"timestamp":"2026-01-01T00:00:00.000000000Z","level":"info","message":"Data processed successfully","service":"backend-api","request_id":""}\n'
    d = tempfile.mkdtemp(prefix="bench-kernel-", dir=root)
    dfd = os.open(d, os.O_RDONLY)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_stime
    for start in range(0, files, batch):
        names = [f"20260101T000000.000Z-{i:026d}.json" for i in range(start, start + batch)]
        fds = []
        for name in names:
            fd = os.open(f".tmp-{name}", os.O_CREAT | os.O_WRONLY | os.O_EXCL | os.O_CLOEXEC, 0o644, dir_fd=dfd)
            os.write(fd, body)
            fds.append(fd)
        for fd in fds:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        for fd in fds:
            os.fdatasync(fd)
        for fd, name in zip(fds, names):
            os.rename(f".tmp-{name}", name, src_dir_fd=dfd, dst_dir_fd=dfd)
            os.close(fd)
        os.fsync(dfd)
    took = resource.getrusage(resource.RUSAGE_SELF).ru_stime - before
    os.close(dfd)
    trash(d)
    return took / files * 1e6


def gunicorn():
    port = free_port()
    return Server("flask+gunicorn", [os.path.join(VENV, "gunicorn"), "-w", "4", "-b", f"127.0.0.1:{port}", "--chdir", os.path.join(ROOT, "bench/http/python"), "--timeout", "60", "--backlog", "8192", "app:app"], port)


def hyper():
    port = free_port()
    return Server("bare hyper", [HELLO, str(port)], port, ready_path="/")


def disk_rows(n):
    """`run.py --disk-rows N`: only the 5,000-connection `GET /` row on the disk, N times, each
    on a settled disk, then the disk's own limit: how much the disk row varies run to run."""
    settle_disk()
    for i in range(n):
        os.sync()
        time.sleep(2)
        server = ferrostack()
        r = wrk(f"http://127.0.0.1:{server.port}/", 5000, WORK_DURATION)
        cpu_us = server.cpu_used_s() / max(r["requests"], 1) * 1e6
        print(f"run {i + 1}: {r['rps']:.0f} req/s = {r['rps'] / (5000 * 5 / WORK_DURATION):.0%} of ideal, p50 {r['p50']:.0f} ms, p99 {r['p99']:.0f} ms, {cpu_us:.0f} µs CPU per request, peak RSS {server.peak_rss_mib():.1f} MiB, errors: {r['errors'] or 'none'}", flush=True)
        server.stop()
    os.sync()
    time.sleep(2)
    print(f"ext4 system time per durable file: {kernel_us_per_file(ROOT):.1f} µs")
    print(f"disk limit: {disk_limit():.0f} durable files/s (64 threads)")
    burst = burst_limit()
    print(f"burst: 5,000 files durable with one syncfs in {burst:.2f} s (best of 3)")


def main():
    if "--disk-rows" in sys.argv:
        return disk_rows(int(sys.argv[sys.argv.index("--disk-rows") + 1]))
    rows, work_rows = [], []
    startup = []
    for _ in range(10):
        s = ferrostack()
        startup.append((s.ready_s, s.idle_rss_kib))
        s.stop()
    ready_ms = [r * 1000 for r, _ in startup]
    idle_mib = statistics.median(k for _, k in startup) / 1024

    for make, paths in [(hyper, ["/"]), (ferrostack, ["/api", "/healthz"]), (gunicorn, ["/api", "/healthz"])]:
        server = make()
        for path in paths:
            r = wrk(f"http://127.0.0.1:{server.port}{path}?team=platform&tag=a&tag=b" if path == "/api" else f"http://127.0.0.1:{server.port}{path}", 64, DURATION)
            rows.append((server.name, path, r, server.peak_rss_mib()))
        server.stop()

    settle_disk()
    kernel_ram_us = None
    for make, conn_list in ((ferrostack, (100, 1000, 5000)), (ferrostack_tmpfs, (5000,)), (ferrostack_ramdisk, (5000,)), (gunicorn, (100, 1000, 5000))):
        for conns in conn_list:
            # Each row starts on a settled disk: the previous row's files (deleted with its
            # directory) are written back and discarded before this one starts.
            os.sync()
            time.sleep(2)
            server = make()
            if server is None:
                continue
            r = wrk(f"http://127.0.0.1:{server.port}/", conns, WORK_DURATION)
            r["cpu_us"] = server.cpu_used_s() / max(r["requests"], 1) * 1e6
            if server.name.endswith("RAM disk"):
                kernel_ram_us = kernel_us_per_file(os.path.dirname(server.log_dir))
            work_rows.append((server.name, conns, r, server.peak_rss_mib()))
            server.stop()
            getattr(server, "cleanup", lambda: None)()

    os.sync()
    time.sleep(2)
    kernel_disk_us = kernel_us_per_file(ROOT)
    disk_files_per_s = disk_limit()
    burst = burst_limit()
    empty_trash()

    limit = next(r for n, p, r, _ in rows if n == "bare hyper")["rps"]
    py = {p: r["rps"] for n, p, r, _ in rows if n == "flask+gunicorn"}
    out = []
    out.append(f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores; server on core {SERVER_CORE}, wrk on core {CLIENT_CORE}; release build.\n")
    out.append(f"Load command: `{rows[0][2]['cmd'].split(' http')[0]} <url>` ({DURATION} s runs); `GET /` runs use `-c N -d{WORK_DURATION}s`.\n")
    out.append("| server | route | req/s | p50 ms | p99 ms | peak RSS MiB | vs bare hyper | vs Flask/gunicorn |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|")
    for name, path, r, rss in rows:
        vs_py = f"{r['rps'] / py[path]:.1f}x" if path in py and name != "flask+gunicorn" else "—"
        out.append(f"| {name} | `{path}` | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {rss:.1f} | {r['rps'] / limit:.0%} | {vs_py} |")
    out.append("")
    out.append(f"`GET /` (3 s of simulated work per request). Ideal: each connection completes one request every 3 s, so in a {WORK_DURATION} s run at most connections × {WORK_DURATION // 3} requests finish (ideal req/s = connections × {WORK_DURATION // 3} / {WORK_DURATION}; the 5,000/3 s steady state once warmed up):\n")
    out.append("| server | connections | req/s | ideal req/s | of ideal | p50 ms | p99 ms | CPU µs/req | peak RSS MiB | errors |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, conns, r, rss in work_rows:
        ideal = conns * (WORK_DURATION // 3) / WORK_DURATION
        errs = r["errors"] or "none"
        out.append(f"| {name} | {conns} | {r['rps']:.0f} | {ideal:.0f} | {r['rps'] / ideal:.0%} | {r['p50']:.0f} | {r['p99']:.0f} | {r['cpu_us']:.0f} | {rss:.1f} | {errs} |")
    out.append("")
    disk5k = next(r for n, c, r, _ in work_rows if n == "ferrostack" and c == 5000)
    tmpfs5k = next((r for n, c, r, _ in work_rows if n.endswith("tmpfs")), None)
    wave_s = 5000 * disk5k["cpu_us"] / 1e6
    out.append(
        f"Where the 5,000-connection p99 goes. wrk opens all 5,000 connections at once, so the first 5,000 timers end "
        f"within milliseconds of each other, and that first wave is a fifth of a {WORK_DURATION} s run's requests: the "
        f"run's p99 is about the wave's 95th percentile. The server has one core, so the wave's last responses wait for "
        f"that core's work on all the others. On the disk row the server used {disk5k['cpu_us']:.0f} µs of CPU per "
        f"`GET /` (user + system, whole run)"
        + (f", {tmpfs5k['cpu_us']:.0f} µs with the log dir on tmpfs" if tmpfs5k else "")
        + f", so the wave needs about {wave_s:.2f} s of the core and its 95th percentile lands near "
        f"{3.0 + 0.95 * wave_s:.2f} s. ext4's own system time for the committer's sequence (create, write, start "
        f"writeback, fdatasync, rename; one thread, this run) is {kernel_disk_us:.0f} µs per file on this disk"
        + (f" and {kernel_ram_us:.0f} µs on the RAM disk" if kernel_ram_us else "")
        + "; the rest is the HTTP exchange, mostly the kernel's TCP (on loopback the receiving end's processing runs "
        f"on the sender's core). A p99 of 3.3 s needs the wave in about {0.3 / 0.95:.2f} s: at most "
        f"{0.3 / 0.95 / 5000 * 1e6:.0f} µs of one core per request, files and HTTP together.\n"
    )
    out.append(
        f"The disk's own limits, measured in the same run: {disk_files_per_s:.0f} durable files/s from 64 threads "
        f"(create, write, fsync, rename), the ceiling of `GET /` on this disk whatever the server; and 5,000 files made "
        f"durable with one `syncfs` for the whole filesystem instead of per-file fsyncs (best of 3): {burst:.2f} s. "
        f"The RAM-disk row runs the same server through ext4's journal, fsync and rename paths on a device whose cache "
        f"flushes are free (as on a datacenter NVMe drive with power-loss protection). The Flask baseline writes "
        f"without fsync.\n"
    )
    out.append(f"ferrostack start-up (10 runs, exec to first 200 on /healthz): median {statistics.median(ready_ms):.1f} ms, max {max(ready_ms):.1f} ms; idle RSS median {idle_mib:.1f} MiB.\n")
    text = "\n".join(out)
    print(text)
    with open(os.path.join(ROOT, "bench/http/results.md"), "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    try:
        main()
    finally:
        empty_trash()
