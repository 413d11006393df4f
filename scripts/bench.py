#!/usr/bin/env python3
"""Benchmark driver: Bonded against docker-registry (CNCF distribution), same machine, loopback.

Run through `scripts/bench` (which builds Bonded and checks the tools). Standard library only;
wrk, skopeo and umoci are called as subprocesses. Every server run gets a fresh data
directory; servers alternate order between rounds; the report (docs/PERFORMANCE.md) is
regenerated completely from the medians of the rounds, with the per-round numbers in an
appendix.
"""

import argparse
import atexit
import datetime
import gzip
import hashlib
import http.client
import io
import json
import os
import platform
import re
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.parse

MiB = 1 << 20
GiB = 1 << 30
TICK = os.sysconf("SC_CLK_TCK")
IO_TIMEOUT = 120  # seconds, per socket operation
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

BONDED = "bonded"
RELAXED = "bonded-relaxed"
DOCKER = "docker-registry"
ALL = (BONDED, RELAXED, DOCKER)
READERS = (BONDED, DOCKER)  # read-only scenarios: durability does not matter
DISPLAY = {BONDED: "bonded (fsync, default)", RELAXED: "bonded (relaxed)", DOCKER: "docker-registry 2.8.2"}

LIVE = set()  # servers to kill on exit


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def kill_all():
    for srv in list(LIVE):
        srv.stop(quiet=True)


atexit.register(kill_all)


def _on_signal(signum, _frame):
    raise SystemExit(128 + signum)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loc_path(location):
    u = urllib.parse.urlsplit(location)
    return u.path + ("?" + u.query if u.query else "")


def with_param(path, param):
    return path + ("&" if "?" in path else "?") + param


def sha256_digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------- servers


class ServerError(RuntimeError):
    pass


class Server:
    """One server process with a fresh data directory."""

    def __init__(self, kind, workdir, bonded_bin, tag):
        self.kind = kind
        self.bonded_bin = bonded_bin
        self.dir = tempfile.mkdtemp(prefix=f"{kind}-{tag}-", dir=workdir)
        self.data = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "server.log")
        self.port = None
        self.proc = None

    def start(self):
        """Starts the process and polls GET /v2/ every 5 ms; returns ms until the first 200."""
        self.port = free_port()
        if self.kind == DOCKER:
            cfg = os.path.join(self.dir, "config.yml")
            with open(cfg, "w") as f:
                f.write(
                    "version: 0.1\n"
                    f"storage: {{filesystem: {{rootdirectory: {self.data}}}, delete: {{enabled: true}}}}\n"
                    f"http: {{addr: 127.0.0.1:{self.port}}}\n"
                    "log: {level: error}\n"
                )
            cmd = ["docker-registry", "serve", cfg]
        else:
            durability = "relaxed" if self.kind == RELAXED else "fsync"
            cmd = [self.bonded_bin, "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.data,
                   "--durability", durability]
        logf = open(self.log_path, "wb")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        logf.close()
        LIVE.add(self)
        deadline = t0 + 30
        while True:
            if self.proc.poll() is not None:
                raise ServerError(f"{self.kind} exited with status {self.proc.returncode} during startup\n"
                                  f"command: {' '.join(cmd)}\n{self.log_tail()}")
            try:
                if probe_v2(self.port) == 200:
                    return (time.perf_counter() - t0) * 1000
            except OSError:
                pass
            if time.perf_counter() > deadline:
                raise ServerError(f"{self.kind} did not answer GET /v2/ with 200 within 30 s\n"
                                  f"command: {' '.join(cmd)}\n{self.log_tail()}")
            time.sleep(0.005)

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return "(no log)"
        return "--- server log tail ---\n" + "\n".join(text[-lines:])

    def check_alive(self):
        if self.proc is None or self.proc.poll() is not None:
            raise ServerError(f"{self.kind} died (status {self.proc.returncode if self.proc else '?'})\n"
                              f"{self.log_tail()}")

    def cpu(self):
        """utime + stime of the server process (all threads), in seconds."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def status_kib(self, field):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise KeyError(field)

    def rss_mib(self):
        return self.status_kib("VmRSS") / 1024

    def hwm_mib(self):
        return self.status_kib("VmHWM") / 1024

    def stop(self, quiet=False):
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.terminate()
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            except Exception:
                if not quiet:
                    raise
        LIVE.discard(self)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop(quiet=True)


def probe_v2(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    try:
        s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    finally:
        s.close()


# ----------------------------------------------------------------------------- raw HTTP/1.1


class RawConn:
    """A minimal keep-alive HTTP/1.1 client over a plain socket (for precise timestamps)."""

    def __init__(self, port):
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rbuf = b""

    def close(self):
        self.sock.close()

    def send_head(self, method, path, headers):
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}", "User-Agent: bonded-bench"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

    def send_file(self, f, offset, count):
        sent = self.sock.sendfile(f, offset, count)
        if sent != count:
            raise ConnectionError(f"sendfile sent {sent} of {count} bytes")

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.rbuf += chunk

    def read_head(self):
        while True:
            while b"\r\n\r\n" not in self.rbuf:
                self._fill()
            head, self.rbuf = self.rbuf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            if 100 <= status < 200:
                continue
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            return status, headers

    def _read_exact(self, n, sink):
        """Reads n body bytes; with sink, discards them and returns the count."""
        if not sink:
            while len(self.rbuf) < n:
                self._fill()
            body, self.rbuf = self.rbuf[:n], self.rbuf[n:]
            return body
        got = min(n, len(self.rbuf))
        self.rbuf = self.rbuf[got:]
        buf = bytearray(4 * MiB)
        view = memoryview(buf)
        while got < n:
            k = self.sock.recv_into(view, min(len(buf), n - got))
            if k == 0:
                raise ConnectionError(f"server closed the connection after {got} of {n} body bytes")
            got += k
        return got

    def read_response(self, method="GET", sink=False):
        status, headers = self.read_head()
        if method == "HEAD" or status in (204, 304):
            return status, headers, b""
        if "content-length" in headers:
            return status, headers, self._read_exact(int(headers["content-length"]), sink)
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                while b"\r\n" not in self.rbuf:
                    self._fill()
                line, self.rbuf = self.rbuf.split(b"\r\n", 1)
                size = int(line.split(b";")[0], 16)
                chunk = self._read_exact(size + 2, False)[:size]
                if size == 0:
                    return status, headers, body
                body += chunk
        body = self.rbuf
        while True:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                return status, headers, body
            body += chunk

    def request(self, method, path, headers=None, body=b""):
        h = dict(headers or {})
        h["Content-Length"] = str(len(body))
        self.send_head(method, path, h)
        if body:
            self.sock.sendall(body)
        return self.read_response(method)


def expect(status, want, what, body=b""):
    if status != want:
        raise RuntimeError(f"{what}: expected {want}, got {status}: {body[:300]!r}")


def send_body_then_response(conn, f, offset, count):
    """Streams count bytes of f; returns (status, headers, body, t_last_byte)."""
    try:
        conn.send_file(f, offset, count)
    except OSError as e:
        # The server answered early (an error) and closed: show what it said.
        try:
            status, _, body = conn.read_response()
            raise RuntimeError(f"upload interrupted ({e}); server said {status}: {body[:300]!r}") from e
        except (OSError, ValueError, IndexError):
            raise RuntimeError(f"upload interrupted: {e}") from e
    t_last = time.perf_counter()
    status, headers, body = conn.read_response()
    return status, headers, body, t_last


def start_session(conn, repo):
    status, headers, body = conn.request("POST", f"/v2/{repo}/blobs/uploads/")
    expect(status, 202, "POST upload", body)
    return loc_path(headers["location"])


def push_monolithic(port, repo, path, size, digest, mode):
    """mode 'post': POST ?digest= with the body. mode 'post+put': POST, then one PUT ?digest= with
    the body. Returns seconds (whole push) and ms from the last body byte written to the 201."""
    conn = RawConn(port)
    try:
        with open(path, "rb") as f:
            t0 = time.perf_counter()
            head = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
            if mode == "post":
                conn.send_head("POST", f"/v2/{repo}/blobs/uploads/?digest={digest}", head)
            else:
                loc = start_session(conn, repo)
                conn.send_head("PUT", with_param(loc, f"digest={digest}"), head)
            status, _, body, t_last = send_body_then_response(conn, f, 0, size)
            t_end = time.perf_counter()
        expect(status, 201, f"monolithic push ({mode})", body)
        return {"seconds": t_end - t0, "last_byte_ms": (t_end - t_last) * 1000}
    finally:
        conn.close()


def push_chunked(port, repo, path, size, digest, chunk):
    conn = RawConn(port)
    try:
        with open(path, "rb") as f:
            t0 = time.perf_counter()
            loc = start_session(conn, repo)
            off = 0
            while off < size:
                n = min(chunk, size - off)
                conn.send_head("PATCH", loc, {"Content-Type": "application/octet-stream",
                                              "Content-Range": f"{off}-{off + n - 1}",
                                              "Content-Length": str(n)})
                status, headers, body, _ = send_body_then_response(conn, f, off, n)
                expect(status, 202, f"PATCH {off}-{off + n - 1}", body)
                loc = loc_path(headers["location"])
                off += n
            t_put = time.perf_counter()
            status, _, body = conn.request("PUT", with_param(loc, f"digest={digest}"))
            t_end = time.perf_counter()
        expect(status, 201, "final PUT", body)
        return {"seconds": t_end - t0, "final_put_ms": (t_end - t_put) * 1000}
    finally:
        conn.close()


def pull_blob(port, repo, digest, size):
    conn = RawConn(port)
    try:
        t0 = time.perf_counter()
        conn.send_head("GET", f"/v2/{repo}/blobs/{digest}", {})
        status, headers, got = conn.read_response(sink=True)
        t_end = time.perf_counter()
        if status != 200 or got != size:
            raise RuntimeError(f"GET blob: status {status}, {got} bytes (want 200, {size})")
        return {"seconds": t_end - t0}
    finally:
        conn.close()


def monolithic_mode(port):
    """Does the server take a monolithic POST ?digest= with the body (201), or only start a
    session (202)?"""
    data = os.urandom(1024)
    conn = RawConn(port)
    try:
        status, headers, body = conn.request(
            "POST", f"/v2/bench/probe/blobs/uploads/?digest={sha256_digest(data)}",
            {"Content-Type": "application/octet-stream"}, data)
    finally:
        conn.close()
    if status == 201:
        return "post"
    if status == 202:
        return "post+put"
    raise RuntimeError(f"monolithic probe: unexpected status {status}: {body[:300]!r}")


# ----------------------------------------------------------------------------- small images


def http_conn(port):
    return http.client.HTTPConnection("127.0.0.1", port, timeout=IO_TIMEOUT)


def hreq(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    return r.status, r, data


def upload_small(conn, repo, data):
    digest = sha256_digest(data)
    status, r, body = hreq(conn, "POST", f"/v2/{repo}/blobs/uploads/", b"", {"Content-Length": "0"})
    expect(status, 202, f"POST upload {repo}", body)
    status, r, body = hreq(conn, "PUT", with_param(loc_path(r.getheader("Location")), f"digest={digest}"), data,
                           {"Content-Type": "application/octet-stream"})
    expect(status, 201, f"PUT blob {repo}", body)
    return digest


def small_image():
    """A real one-layer image: gzip'd tar layer (64 KiB random file), config, OCI manifest."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        payload = os.urandom(64 * 1024)
        info = tarfile.TarInfo("payload.bin")
        info.size = len(payload)
        info.mtime = 0
        tar.addfile(info, io.BytesIO(payload))
    tar_bytes = raw.getvalue()
    layer = gzip.compress(tar_bytes, mtime=0)
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(tar_bytes)]},
    }, separators=(",", ":")).encode()
    return config, layer


def manifest_for(config, layer, annotations=None):
    m = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256_digest(config), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": sha256_digest(layer), "size": len(layer)}],
    }
    if annotations:
        m["annotations"] = annotations
    return json.dumps(m, separators=(",", ":")).encode()


def push_small_image(port, repo, tag, config, layer):
    conn = http_conn(port)
    try:
        upload_small(conn, repo, config)
        upload_small(conn, repo, layer)
        status, _, body = hreq(conn, "PUT", f"/v2/{repo}/manifests/{tag}", manifest_for(config, layer),
                               {"Content-Type": OCI_MANIFEST})
        expect(status, 201, "PUT manifest", body)
    finally:
        conn.close()


# ----------------------------------------------------------------------------- wrk


def to_ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}[unit]


def parse_wrk(out):
    def need(pattern):
        m = re.search(pattern, out, re.M)
        if not m:
            raise RuntimeError(f"cannot parse wrk output (missing {pattern!r}):\n{out}")
        return m

    res = {
        "rps": float(need(r"Requests/sec:\s+([\d.]+)").group(1)),
        "requests": int(need(r"^\s*(\d+) requests in ").group(1)),
    }
    for pct in ("50", "99"):
        m = need(rf"^\s+{pct}(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$")
        res[f"p{pct}_ms"] = to_ms(m.group(1), m.group(2))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    res["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
    return res


def run_wrk(url, conns, seconds, script=None):
    cmd = ["wrk", f"-t{min(conns, 2)}", f"-c{conns}", f"-d{seconds}s", "--timeout", "10s", "--latency",
           "-H", f"Accept: {OCI_MANIFEST}"]
    if script:
        cmd += ["-s", script]
    cmd.append(url)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    if p.returncode != 0:
        raise RuntimeError(f"wrk failed ({p.returncode}): {p.stderr}\n{p.stdout}")
    return parse_wrk(p.stdout)


def py_load(port, path, method, conns, seconds):
    """Closed-loop keep-alive load generator (one thread, non-blocking sockets, selectors): each of
    `conns` connections sends the next request as soon as the previous response is complete.
    Used for HEAD, because wrk 4.1 cannot do HEAD against responses that carry a Content-Length
    (https://github.com/wg/wrk/issues/198: its parser waits for a body that never comes)."""
    req = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: bonded-bench\r\n"
           f"Accept: {OCI_MANIFEST}\r\n\r\n").encode()
    sel = selectors.DefaultSelector()
    lat = []
    bad = 0
    state = {}
    try:
        for _ in range(conns):
            s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.setblocking(False)
            state[s] = [b"", 0]
            sel.register(s, selectors.EVENT_READ)
        t0 = time.perf_counter()
        end = t0 + seconds
        hard_end = end + 30
        for s in state:
            state[s][1] = time.perf_counter_ns()
            s.send(req)
        while state:
            events = sel.select(1.0)
            if time.perf_counter() > hard_end:
                raise RuntimeError(f"{method} load: responses stalled")
            for key, _ in events:
                s = key.fileobj
                st = state[s]
                chunk = s.recv(1 << 16)
                if not chunk:
                    raise RuntimeError(f"{method} load: server closed a connection")
                st[0] += chunk
                while True:
                    i = st[0].find(b"\r\n\r\n")
                    if i < 0:
                        break
                    head, rest = st[0][:i], st[0][i + 4:]
                    if method != "HEAD":
                        j = head.lower().find(b"content-length:")
                        n = int(head[j + 15:head.find(b"\r\n", j) if head.find(b"\r\n", j) > 0 else None])
                        if len(rest) < n:
                            break
                        rest = rest[n:]
                    now = time.perf_counter_ns()
                    if head[9:12] != b"200":
                        bad += 1
                    lat.append(now - st[1])
                    st[0], st[1] = rest, now
                    if time.perf_counter() < end:
                        s.send(req)
                    else:
                        sel.unregister(s)
                        s.close()
                        del state[s]
                        break
        wall = time.perf_counter() - t0
    finally:
        for s in state:
            s.close()
        sel.close()
    lat.sort()
    return {"rps": len(lat) / wall, "requests": len(lat), "p50_ms": lat[len(lat) // 2] / 1e6,
            "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] / 1e6, "non2xx": bad, "socket_errors": 0}


# ----------------------------------------------------------------------------- the benchmark


class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.rounds = args.rounds if args.rounds else (1 if args.quick else 3)
        self.big = (args.size_mib if args.size_mib else (256 if args.quick else 1024)) * MiB
        self.par_size = self.big // 4
        self.chunk = 16 * MiB
        self.wrk_seconds = args.wrk_seconds if args.wrk_seconds else (3 if args.quick else 8)
        self.requests = args.requests if args.requests else (500 if args.quick else 2000)
        self.starts = 3 if args.quick else 5
        self.threads = 8
        self.layer_bytes = 42_000_000
        self.bonded_bin = os.path.abspath(args.bonded_bin)
        self.workdir = tempfile.mkdtemp(prefix="bonded-bench-", dir=args.workdir)
        # results[server][metric] = list of per-round values (None for a failed run)
        self.results = {k: {} for k in ALL}
        self.errors = []
        self.modes = {}
        self.orders = []
        self.notes = []
        self.only = set(args.only.split(",")) if args.only else None
        self.head_tool = None  # "wrk", or "python" when wrk cannot do HEAD
        self.round_load = []  # 1-minute load average at the start of each round

    # -- helpers

    def record(self, server, key, value, rnd):
        vals = self.results[server].setdefault(key, [None] * self.rounds)
        vals[rnd] = value

    def fresh(self, kind, tag):
        srv = Server(kind, self.workdir, self.bonded_bin, tag)
        srv.start()
        return srv

    def settle(self):
        # Flush dirty pages (docker-registry never fsyncs) so that one server's writeback does
        # not land in the next server's measurement.
        os.sync()
        time.sleep(0.5)

    def gen_file(self, name, size):
        path = os.path.join(self.workdir, name)
        h = hashlib.sha256()
        hash_s = 0.0
        with open(path, "wb") as f:
            left = size
            while left:
                block = os.urandom(min(4 * MiB, left))
                t = time.perf_counter()
                h.update(block)
                hash_s += time.perf_counter() - t
                f.write(block)
                left -= len(block)
        return path, "sha256:" + h.hexdigest(), hash_s

    def prepare(self):
        log(f"work directory {self.workdir}")
        log(f"generating {self.big // MiB} MiB random test file and {4} x {self.par_size // MiB} MiB parallel files")
        self.big_path, self.big_digest, hash_s = self.gen_file("big.bin", self.big)
        self.sha256_gib_s = (self.big / GiB) / hash_s if hash_s > 0 else None
        self.par = [self.gen_file(f"par{i}.bin", self.par_size)[:2] for i in range(4)]
        # Disk baseline: the same bytes written with and without a final fsync.
        self.disk = {}
        for label, extra in (("fsync", ["conv=fsync"]), ("no fsync", [])):
            out = os.path.join(self.workdir, "dd.out")
            t = time.perf_counter()
            subprocess.run(["dd", f"if={self.big_path}", f"of={out}", "bs=4M"] + extra, check=True,
                           capture_output=True, timeout=600)
            self.disk[label] = (self.big / MiB) / (time.perf_counter() - t)
            os.unlink(out)
            self.settle()
        self.config_blob, self.layer_blob = small_image()
        self.head_lua = os.path.join(self.workdir, "head.lua")
        with open(self.head_lua, "w") as f:
            f.write('wrk.method = "HEAD"\n')
        if self.want("i"):
            self.build_oci_layout()

    def build_oci_layout(self):
        log("building the skopeo test image with umoci (4 x 42 MB random layers)")
        self.layout = os.path.join(self.workdir, "layout")
        ref = f"{self.layout}:img"
        run = lambda *cmd: subprocess.run(list(cmd), check=True, capture_output=True, timeout=600)
        run("umoci", "init", "--layout", self.layout)
        run("umoci", "new", "--image", ref)
        for i in range(4):
            src = os.path.join(self.workdir, f"layer{i}.bin")
            with open(src, "wb") as f:
                left = self.layer_bytes
                while left:
                    n = min(4 * MiB, left)
                    f.write(os.urandom(n))
                    left -= n
            run("umoci", "insert", "--image", ref, src, f"/data/layer{i}.bin")
            os.unlink(src)
        run("umoci", "config", "--image", ref, "--architecture", "amd64", "--os", "linux")
        run("umoci", "gc", "--layout", self.layout)
        total = 0
        for root, _, files in os.walk(os.path.join(self.layout, "blobs")):
            total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
        self.layout_bytes = total
        self.policy = os.path.join(self.workdir, "policy.json")
        with open(self.policy, "w") as f:
            json.dump({"default": [{"type": "insecureAcceptAnything"}]}, f)
        self.authfile = os.path.join(self.workdir, "auth.json")
        with open(self.authfile, "w") as f:
            json.dump({"auths": {}}, f)

    def want(self, scenario):
        return self.only is None or scenario in self.only

    def mode(self, kind, port):
        if kind not in self.modes:
            self.modes[kind] = monolithic_mode(port)
            log(f"{kind}: monolithic push mode = {self.modes[kind]}")
        return self.modes[kind]

    # -- scenarios; each gets a fresh server

    def sc_push_mono(self, kind, rnd):
        with self.fresh(kind, f"a{rnd}") as srv:
            mode = self.mode(kind, srv.port)
            samples = []
            stop = threading.Event()

            def sampler():
                while not stop.is_set():
                    try:
                        samples.append(srv.rss_mib())
                    except (OSError, KeyError):
                        return
                    stop.wait(0.1)

            th = threading.Thread(target=sampler, daemon=True)
            cpu0 = srv.cpu()
            th.start()
            res = push_monolithic(srv.port, "bench/big", self.big_path, self.big, self.big_digest, mode)
            stop.set()
            th.join()
            cpu = srv.cpu() - cpu0
            srv.check_alive()
            self.record(kind, "a.mibps", (self.big / MiB) / res["seconds"], rnd)
            self.record(kind, "a.cpu", cpu / (self.big / GiB), rnd)
            self.record(kind, "a.last_byte_ms", res["last_byte_ms"], rnd)
            self.record(kind, "g.rss_growth", max(samples) - min(samples), rnd)
            self.record(kind, "g.hwm_mono", srv.hwm_mib(), rnd)
            return f"{(self.big / MiB) / res['seconds']:.0f} MiB/s, cpu {cpu:.2f}s, last byte->201 {res['last_byte_ms']:.1f} ms"

    def sc_push_chunked(self, kind, rnd):
        with self.fresh(kind, f"b{rnd}") as srv:
            cpu0 = srv.cpu()
            res = push_chunked(srv.port, "bench/big", self.big_path, self.big, self.big_digest, self.chunk)
            cpu = srv.cpu() - cpu0
            srv.check_alive()
            mibps = (self.big / MiB) / res["seconds"]
            self.record(kind, "b.mibps", mibps, rnd)
            self.record(kind, "b.cpu", cpu / (self.big / GiB), rnd)
            self.record(kind, "b.final_put_ms", res["final_put_ms"], rnd)
            self.record(kind, "g.hwm_chunked", srv.hwm_mib(), rnd)
            mono = self.results[kind].get("a.mibps", [None] * self.rounds)[rnd]
            if mono:
                self.record(kind, "b.vs_mono", mibps / mono, rnd)
            return f"{mibps:.0f} MiB/s, cpu {cpu:.2f}s"

    def sc_pull(self, kind, rnd):
        with self.fresh(kind, f"c{rnd}") as srv:
            push_monolithic(srv.port, "bench/big", self.big_path, self.big, self.big_digest,
                            self.mode(kind, srv.port))
            pull_blob(srv.port, "bench/big", self.big_digest, self.big)  # warm: page cache, file handles
            cpu0 = srv.cpu()
            res = pull_blob(srv.port, "bench/big", self.big_digest, self.big)
            cpu = srv.cpu() - cpu0
            srv.check_alive()
            mibps = (self.big / MiB) / res["seconds"]
            self.record(kind, "c.mibps", mibps, rnd)
            self.record(kind, "c.cpu", cpu / (self.big / GiB), rnd)
            self.record(kind, "g.hwm_pull", srv.hwm_mib(), rnd)
            return f"{mibps:.0f} MiB/s, cpu {cpu:.2f}s"

    def sc_parallel(self, kind, rnd):
        with self.fresh(kind, f"d{rnd}") as srv:
            mode = self.mode(kind, srv.port)
            barrier = threading.Barrier(5)
            errors = []

            def worker(i):
                path, digest = self.par[i]
                barrier.wait()
                try:
                    push_monolithic(srv.port, f"bench/par{i}", path, self.par_size, digest, mode)
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append(e)

            threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
            for t in threads:
                t.start()
            cpu0 = srv.cpu()
            barrier.wait()
            t0 = time.perf_counter()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
            cpu = srv.cpu() - cpu0
            if errors:
                raise errors[0]
            srv.check_alive()
            total = 4 * self.par_size
            self.record(kind, "d.mibps", (total / MiB) / wall, rnd)
            self.record(kind, "d.cpu", cpu / (total / GiB), rnd)
            return f"{(total / MiB) / wall:.0f} MiB/s aggregate"

    def sc_manifest_reads(self, kind, rnd):
        with self.fresh(kind, f"e{rnd}") as srv:
            push_small_image(srv.port, "bench/img", "v1", self.config_blob, self.layer_blob)
            url = f"http://127.0.0.1:{srv.port}/v2/bench/img/manifests/v1"
            run_wrk(url, 8, 1)  # warm-up
            if self.head_tool is None:
                probe = run_wrk(url, 1, 1, self.head_lua)
                self.head_tool = "wrk" if probe["requests"] > 0 and not probe["non2xx"] else "python"
                log(f"wrk HEAD probe: {probe['requests']} requests in 1 s -> HEAD load tool: {self.head_tool}")
            cells = [("GET", c, "wrk") for c in (1, 8, 32)] + [("HEAD", c, self.head_tool) for c in (1, 8, 32)]
            if self.head_tool == "python":
                # The same client as HEAD, for GET, to calibrate it against wrk.
                cells += [("GET", 1, "python"), ("GET", 32, "python")]
            parts = []
            for method, conns, tool in cells:
                cpu0 = srv.cpu()
                if tool == "wrk":
                    res = run_wrk(url, conns, self.wrk_seconds, self.head_lua if method == "HEAD" else None)
                else:
                    res = py_load(srv.port, "/v2/bench/img/manifests/v1", method, conns, self.wrk_seconds)
                cpu = srv.cpu() - cpu0
                if res["non2xx"] or res["socket_errors"]:
                    self.errors.append(f"round {rnd + 1} {kind} {method} c={conns}: {res['non2xx']} non-2xx, "
                                       f"{res['socket_errors']} socket errors")
                k = f"e.{method}{'.py' if (method == 'GET' and tool == 'python') else ''}.c{conns}"
                self.record(kind, f"{k}.rps", res["rps"], rnd)
                self.record(kind, f"{k}.p50", res["p50_ms"], rnd)
                self.record(kind, f"{k}.p99", res["p99_ms"], rnd)
                self.record(kind, f"{k}.cpu_us", cpu / max(res["requests"], 1) * 1e6, rnd)
                parts.append(f"{method}/c{conns}/{tool} {res['rps']:.0f}/s")
            srv.check_alive()
            return ", ".join(parts)

    def parallel_requests(self, port, jobs):
        """Runs jobs (method, path, body, headers, want) on self.threads keep-alive connections;
        returns (requests/s, client CPU in cores)."""
        lock = threading.Lock()
        it = iter(jobs)
        errors = []
        barrier = threading.Barrier(self.threads + 1)

        def worker():
            conn = http_conn(port)
            barrier.wait()
            try:
                while True:
                    with lock:
                        job = next(it, None)
                    if job is None:
                        return
                    method, path, body, headers, want = job
                    status, _, data = hreq(conn, method, path, body, headers)
                    if status != want:
                        raise RuntimeError(f"{method} {path}: expected {want}, got {status}: {data[:200]!r}")
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
            finally:
                conn.close()

        threads = [threading.Thread(target=worker) for _ in range(self.threads)]
        for t in threads:
            t.start()
        barrier.wait()
        t0, c0 = time.perf_counter(), time.process_time()
        for t in threads:
            t.join()
        wall, ccpu = time.perf_counter() - t0, time.process_time() - c0
        if errors:
            raise errors[0]
        return len(jobs) / wall, ccpu / wall

    def sc_writes(self, kind, rnd):
        with self.fresh(kind, f"f{rnd}") as srv:
            conn = http_conn(srv.port)
            try:
                src_blob = os.urandom(1024)
                digest = upload_small(conn, "bench/src", src_blob)
            finally:
                conn.close()
            push_small_image(srv.port, "bench/mp", "base", self.config_blob, self.layer_blob)
            n = self.requests
            mounts = [("POST", f"/v2/bench/mnt-{i}/blobs/uploads/?mount={digest}&from=bench/src", b"",
                       {"Content-Length": "0"}, 201) for i in range(n)]
            cpu0 = srv.cpu()
            rps, ccores = self.parallel_requests(srv.port, mounts)
            cpu = srv.cpu() - cpu0
            self.record(kind, "f.mount_rps", rps, rnd)
            self.record(kind, "f.mount_client", ccores, rnd)
            self.record(kind, "f.mount_cpu_us", cpu / n * 1e6, rnd)
            puts = [("PUT", f"/v2/bench/mp/manifests/t{i}",
                     manifest_for(self.config_blob, self.layer_blob, {"bench.index": str(i)}),
                     {"Content-Type": OCI_MANIFEST}, 201) for i in range(n)]
            cpu0 = srv.cpu()
            rps2, ccores2 = self.parallel_requests(srv.port, puts)
            cpu = srv.cpu() - cpu0
            srv.check_alive()
            self.record(kind, "f.put_rps", rps2, rnd)
            self.record(kind, "f.put_client", ccores2, rnd)
            self.record(kind, "f.put_cpu_us", cpu / n * 1e6, rnd)
            return f"mount {rps:.0f}/s (client {ccores:.2f} cores), manifest PUT {rps2:.0f}/s (client {ccores2:.2f} cores)"

    def sc_startup(self, kind, rnd):
        times, idle = [], []
        for i in range(self.starts):
            with Server(kind, self.workdir, self.bonded_bin, f"h{rnd}-{i}") as srv:
                times.append(srv.start())
                probe_v2(srv.port)
                time.sleep(0.5)
                idle.append(srv.rss_mib())
        self.record(kind, "h.startup_ms", statistics.median(times), rnd)
        self.record(kind, "g.rss_idle", statistics.median(idle), rnd)
        return f"{statistics.median(times):.1f} ms to first 200, idle RSS {statistics.median(idle):.1f} MiB"

    def sc_skopeo(self, kind, rnd):
        with self.fresh(kind, f"i{rnd}") as srv:
            cmd = ["skopeo", "--policy", self.policy, "copy", "--quiet", "--authfile", self.authfile,
                   "--dest-tls-verify=false", f"oci:{self.layout}:img",
                   f"docker://127.0.0.1:{srv.port}/bench/skopeo:v1"]
            t0 = time.perf_counter()
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
            secs = time.perf_counter() - t0
            if p.returncode != 0:
                raise RuntimeError(f"skopeo copy failed ({p.returncode}): {p.stderr[-2000:]}")
            srv.check_alive()
            self.record(kind, "i.skopeo_s", secs, rnd)
            return f"{secs:.2f} s"

    SCENARIOS = [
        ("a", "sc_push_mono", ALL),
        ("b", "sc_push_chunked", ALL),
        ("c", "sc_pull", READERS),
        ("d", "sc_parallel", ALL),
        ("e", "sc_manifest_reads", READERS),
        ("f", "sc_writes", ALL),
        ("h", "sc_startup", ALL),
        ("i", "sc_skopeo", ALL),
    ]

    def run(self):
        repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        rev = cmd_out(["git", "-C", repo, "rev-parse", "--short", "HEAD"])
        dirty = cmd_out(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no", "--", "crates",
                         "Cargo.toml", "Cargo.lock"])
        self.git_rev = rev + (" + uncommitted changes in crates/" if dirty else "")
        mtime = datetime.datetime.fromtimestamp(os.path.getmtime(self.bonded_bin), datetime.timezone.utc)
        self.bin_info = f"`{self.bonded_bin}`, built {mtime.strftime('%Y-%m-%d %H:%M UTC')}"
        self.t_start = time.perf_counter()
        self.started_at = datetime.datetime.now(datetime.timezone.utc)
        self.loadavg_start = os.getloadavg()
        self.prepare()
        for rnd in range(self.rounds):
            order = list(ALL) if rnd % 2 == 0 else list(reversed(ALL))
            self.orders.append(order)
            self.round_load.append(os.getloadavg()[0])
            log(f"=== round {rnd + 1}/{self.rounds}: order {', '.join(order)}")
            for letter, method, kinds in self.SCENARIOS:
                if not self.want(letter):
                    continue
                for kind in order:
                    if kind not in kinds:
                        continue
                    try:
                        summary = getattr(self, method)(kind, rnd)
                        log(f"({letter}) {kind}: {summary}")
                    except ServerError:
                        raise
                    except Exception as e:  # noqa: BLE001 - recorded in the report
                        msg = f"round {rnd + 1} ({letter}) {kind}: {type(e).__name__}: {e}"
                        log("ERROR " + msg)
                        self.errors.append(msg)
                    self.settle()
        self.loadavg_end = os.getloadavg()
        self.elapsed = time.perf_counter() - self.t_start

    def cleanup(self):
        if self.args.keep_workdir:
            log(f"keeping {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)


# ----------------------------------------------------------------------------- report


def med(values):
    vals = [v for v in (values or []) if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, unit=""):
    if v is None:
        return "—"
    if unit == "×":
        return f"{v:.2f}×"
    a = abs(v)
    if a >= 1000:
        s = f"{v:,.0f}"
    elif a >= 100:
        s = f"{v:.0f}"
    elif a >= 10:
        s = f"{v:.1f}"
    elif a >= 1:
        s = f"{v:.2f}"
    else:
        s = f"{v:.3f}"
    return s


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def cmd_out(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception:  # noqa: BLE001
        return "?"


def machine_info(bench):
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    dr = cmd_out(["docker-registry", "--version"])
    return {
        "nproc": cmd_out(["nproc"]),
        "cpu": model,
        "mem": mem,
        "kernel": platform.release(),
        "rev": bench.git_rev,
        "bonded_version": cmd_out([bench.bonded_bin, "--version"]),
        "docker_version": dr,
        "tools": f"{cmd_out(['wrk', '--version']).splitlines()[0] if cmd_out(['wrk', '--version']) else 'wrk ?'}; "
                 f"{cmd_out(['skopeo', '--version'])}; {cmd_out(['umoci', '--version'])}; "
                 f"Python {platform.python_version()}",
    }


def write_report(bench, path):
    R = bench.results
    B, X, D = BONDED, RELAXED, DOCKER
    big = f"{bench.big // MiB} MiB" if bench.big < GiB else f"{bench.big // GiB} GiB"
    par = f"4 × {bench.par_size // MiB} MiB"
    m = lambda kind, key: med(R[kind].get(key))
    info = machine_info(bench)
    mode_d = bench.modes.get(D, "?")
    out = []
    w = out.append

    w("# Performance\n")
    w("<!-- Generated by scripts/bench (scripts/bench.py). Do not edit by hand: the whole file is rewritten on "
      "every run. -->\n")
    w(f"Bonded compared with the reference registry, docker-registry (CNCF distribution "
      f"{info['docker_version'].split()[-1] if info['docker_version'] != '?' else '?'}), both on loopback on the same "
      f"machine, driven by `scripts/bench{' --quick' if bench.quick else ''}`. "
      f"Blob push (monolithic, chunked, 4 in parallel), blob pull, manifest GET/HEAD under load, "
      f"cross-repository mounts, manifest PUTs, memory, startup time and a `skopeo copy` of a 4-layer image.\n")
    w(f"**{bench.rounds} round{'s' if bench.rounds > 1 else ''}{' (--quick)' if bench.quick else ''}; every number "
      f"below is the median over rounds.** Each server run starts on a fresh, empty data directory; the servers "
      f"alternate order (round 1: bonded first, round 2: docker-registry first, ...).\n")
    w("| | |\n|---|---|")
    w(f"| Date | {bench.started_at.strftime('%Y-%m-%d %H:%M UTC')} |")
    w(f"| Machine | {info['nproc']} CPUs ({info['cpu']}), {info['mem']} RAM, Linux {info['kernel']} |")
    w(f"| Bonded | `{info['bonded_version']}`, release build; repository at git `{info['rev']}` when the run "
      f"started; binary {bench.bin_info} |")
    w(f"| Reference | `{info['docker_version']}` |")
    w(f"| Tools | {info['tools']} |")
    w(f"| Load average at start / end | {' '.join(f'{x:.2f}' for x in bench.loadavg_start)} / "
      f"{' '.join(f'{x:.2f}' for x in bench.loadavg_end)} |")
    w(f"| Disk baseline (dd, {big}, 4 MiB blocks) | {fmt(bench.disk['fsync'])} MiB/s with a final fsync, "
      f"{fmt(bench.disk['no fsync'])} MiB/s without |")
    if bench.sha256_gib_s:
        w(f"| SHA-256 speed (Python hashlib/OpenSSL, one core) | {bench.sha256_gib_s:.2f} GiB/s, i.e. "
          f"{1 / bench.sha256_gib_s:.2f} CPU s/GiB: the floor for any registry that verifies digests |")
    w(f"| Total benchmark run time | {bench.elapsed / 60:.1f} min |")
    w("")
    w("## How to run\n")
    w("```sh\nscripts/bench           # 3 rounds, 1 GiB blobs (about 15-25 minutes on 2 cores)\n"
      "scripts/bench --quick   # 1 round, 256 MiB blobs, shorter load tests\n"
      "BONDED_BIN=/path/to/bonded scripts/bench   # skip the cargo build, use this binary\n```\n")
    w("Needs `docker-registry` (Debian package of CNCF distribution), `wrk`, `skopeo`, `umoci`, `python3`. "
      "`scripts/bench.py --help` lists the knobs (rounds, sizes, wrk duration, scenario subset).\n")
    w("**Durability.** Bonded runs with its default `--durability fsync`: a blob or manifest is fsync'd (file and "
      "directory) before the registry answers 201. docker-registry never fsyncs; its data may still be in the page "
      "cache when it answers. For a like-for-like view of the push scenarios the table also shows Bonded with "
      "`--durability relaxed` (no fsync, survives a process crash but not a power loss). The targets are "
      "evaluated against the default (fsync) column.\n")
    if mode_d == "post+put":
        w("**Monolithic push on docker-registry.** docker-registry 2.8.2 answers `202 Accepted` to "
          "`POST /v2/<name>/blobs/uploads/?digest=…` with a body (it does not implement the single-request "
          "monolithic upload), so its “monolithic” push is `POST` (empty) + one `PUT <location>&digest=…` carrying the "
          f"whole body. Bonded takes the single `POST ?digest=` (mode: `{bench.modes.get(B, '?')}`). The last-byte "
          "latency is measured on the request that carries the body in both cases.\n")

    # ---- main table
    w(f"## Results (medians of {bench.rounds} round{'s' if bench.rounds > 1 else ''})\n")
    w("Ratio = bonded (fsync) / docker-registry. The *better* column says which direction of the ratio is good.\n")
    w(f"| Scenario | Metric | {DISPLAY[B]} | {DISPLAY[X]} | {DISPLAY[D]} | ratio bonded/docker | better |")
    w("|---|---|---:|---:|---:|---:|---|")

    def row(scen, label, key, unit, better, kinds=ALL, show_ratio=True):
        vals = {k: (m(k, key) if k in kinds else None) for k in ALL}
        r = ratio(vals[B], vals[D]) if show_ratio else None
        cells = [fmt(vals[k], unit) if k in kinds else "" for k in ALL]
        w(f"| {scen} | {label}{f' ({unit})' if unit else ''} | {' | '.join(cells)} | "
          f"{fmt(r, '×') if show_ratio else ''} | {better} |")

    row(f"(a) {big} push, monolithic", "throughput", "a.mibps", "MiB/s", "higher")
    row("", "server CPU per GiB", "a.cpu", "s", "lower")
    row("", "last byte → 201", "a.last_byte_ms", "ms", "lower")
    row(f"(b) {big} push, 16 MiB PATCH chunks", "throughput", "b.mibps", "MiB/s", "higher")
    row("", "server CPU per GiB", "b.cpu", "s", "lower")
    row("", "final empty PUT → 201", "b.final_put_ms", "ms", "lower")
    row("", "chunked / own monolithic throughput", "b.vs_mono", "×", "higher", show_ratio=False)
    row(f"(c) {big} pull", "throughput", "c.mibps", "MiB/s", "higher", READERS)
    row("", "server CPU per GiB", "c.cpu", "s", "lower", READERS)
    row(f"(d) {par} parallel pushes", "aggregate throughput", "d.mibps", "MiB/s", "higher")
    row("", "server CPU per GiB", "d.cpu", "s", "lower")
    row(f"(f) cross-repo mount, {bench.requests} × into new repos, {bench.threads} threads", "rate", "f.mount_rps",
        "req/s", "higher")
    row("", "server CPU per request", "f.mount_cpu_us", "µs", "lower")
    row("", "benchmark client CPU (cores busy)", "f.mount_client", "", "—", show_ratio=False)
    row(f"(f) manifest PUT, {bench.requests} distinct, {bench.threads} threads", "rate", "f.put_rps", "req/s",
        "higher")
    row("", "server CPU per request", "f.put_cpu_us", "µs", "lower")
    row("", "benchmark client CPU (cores busy)", "f.put_client", "", "—", show_ratio=False)
    row("(g) memory", "RSS idle (after start + GET /v2/)", "g.rss_idle", "MiB", "lower")
    row("", f"peak RSS (VmHWM) after the {big} monolithic push", "g.hwm_mono", "MiB", "lower")
    row("", f"peak RSS (VmHWM) after the {big} chunked push", "g.hwm_chunked", "MiB", "lower")
    row("", f"peak RSS (VmHWM) after the {big} push + 2 pulls (c)", "g.hwm_pull", "MiB", "lower", READERS)
    row("", f"RSS max − min while {big} streams in (100 ms samples)", "g.rss_growth", "MiB", "lower")
    row(f"(h) startup on an empty data dir (median of {bench.starts} starts per round)",
        "process start → first GET /v2/ 200", "h.startup_ms", "ms", "lower")
    layout_mb = getattr(bench, "layout_bytes", 0) / 1e6
    row(f"(i) skopeo copy, 4 layers, {layout_mb:.0f} MB", "wall time", "i.skopeo_s", "s", "lower")
    w("")

    # ---- manifest table
    w(f"### (e) Manifest GET / HEAD under load ({bench.wrk_seconds} s per cell)\n")
    w("Tag `v1` of a one-layer OCI image, `Accept: application/vnd.oci.image.manifest.v1+json`, keep-alive, "
      "closed loop (each connection sends its next request when the previous answer is complete). GET: "
      "`wrk -t<min(conns,2)> -c<conns> --latency`. Latencies in ms; CPU is server CPU per request. Ratios "
      "bonded/docker-registry: req/s higher is better, latency and CPU lower is better.\n")
    if bench.head_tool == "python":
        w("HEAD: wrk 4.1 cannot load-test HEAD against responses that carry a `Content-Length` (its parser "
          "waits for a body that never comes, [wg/wrk#198](https://github.com/wg/wrk/issues/198); the probe got 0 "
          "answers), so HEAD uses the driver's own single-threaded keep-alive client (non-blocking sockets, "
          "`selectors`). The extra *GET / python* rows run that same client for GET at 1 and 32 connections, to "
          "show how it compares with wrk.\n")
    w("| Method | Conns | Client | bonded req/s | docker req/s | req/s ratio | bonded p50 | docker p50 | bonded p99 | "
      "docker p99 | p99 ratio | bonded CPU µs/req | docker CPU µs/req | CPU ratio |")
    w("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = [("GET", c, "wrk", f"e.GET.c{c}") for c in (1, 8, 32)]
    rows += [("HEAD", c, bench.head_tool or "?", f"e.HEAD.c{c}") for c in (1, 8, 32)]
    if bench.head_tool == "python":
        rows += [("GET", 1, "python", "e.GET.py.c1"), ("GET", 32, "python", "e.GET.py.c32")]
    for method, conns, tool, k in rows:
        if True:
            cells = []
            for metric in ("rps", "p50", "p99", "cpu_us"):
                b, d = m(B, f"{k}.{metric}"), m(D, f"{k}.{metric}")
                cells += [fmt(b), fmt(d)]
                if metric != "p50":
                    cells.append(fmt(ratio(b, d), "×"))
            w(f"| {method} | {conns} | {tool} | {' | '.join(cells)} |")
    w("")

    # ---- targets
    w("## Targets\n")
    w("Computed from the medians above, Bonded in its default (fsync) mode.\n")
    w("| Target | Measured | Result |")
    w("|---|---|---|")

    def target(name, measured, ok):
        res = "n/a (missing data)" if ok is None else ("**PASS**" if ok else "**FAIL**")
        w(f"| {name} | {measured} | {res} |")

    def ge(a, b):
        return None if a is None or b is None else a >= b

    def le(a, b):
        return None if a is None or b is None else a <= b

    thr = ratio(m(B, "a.mibps"), m(D, "a.mibps"))
    cpu = ratio(m(B, "a.cpu"), m(D, "a.cpu"))
    target("Push ≥ 2× docker-registry throughput", f"{fmt(thr, '×')} ({fmt(m(B, 'a.mibps'))} vs "
           f"{fmt(m(D, 'a.mibps'))} MiB/s)", ge(thr, 2.0))
    target("… at ≤ 0.4× docker-registry server CPU per GiB", f"{fmt(cpu, '×')} ({fmt(m(B, 'a.cpu'))} vs "
           f"{fmt(m(D, 'a.cpu'))} s/GiB)", le(cpu, 0.4))
    lb = m(B, "a.last_byte_ms")
    target(f"Last byte → 201 ≤ 50 ms for a 1 GiB push{f' (measured at {big})' if bench.big != GiB else ''}",
           f"{fmt(lb)} ms", le(lb, 50))
    cm = m(B, "b.vs_mono")
    target("Chunked push ≥ 0.9× Bonded's own monolithic", f"{fmt(cm, '×')}", ge(cm, 0.9))
    pl = ratio(m(B, "c.mibps"), m(D, "c.mibps"))
    target("Pull ≥ 0.9× docker-registry", f"{fmt(pl, '×')} ({fmt(m(B, 'c.mibps'))} vs {fmt(m(D, 'c.mibps'))} MiB/s)",
           ge(pl, 0.9))
    for method in ("GET", "HEAD"):
        rs = [ratio(m(B, f"e.{method}.c{c}.rps"), m(D, f"e.{method}.c{c}.rps")) for c in (1, 8, 32)]
        ok = None if None in rs else min(rs) >= 5.0
        measured = " / ".join(fmt(r, "×") for r in rs)
        if method == "HEAD" and bench.head_tool == "python":
            cal = [ratio(m(B, f"e.GET.py.c{c}.rps"), m(D, f"e.GET.py.c{c}.rps")) for c in (1, 32)]
            measured += (f" (Python client, see above; GET with the same client: {fmt(cal[0], '×')} at 1 conn, "
                         f"{fmt(cal[1], '×')} at 32)")
        target(f"Manifest {method} ≥ 5× docker-registry req/s (at 1, 8 and 32 conns)", measured, ok)
        p99 = ratio(m(B, f"e.{method}.c32.p99"), m(D, f"e.{method}.c32.p99"))
        target(f"Manifest {method} p99 at 32 conns ≤ 0.25× docker-registry's",
               f"{fmt(p99, '×')} ({fmt(m(B, f'e.{method}.c32.p99'))} vs {fmt(m(D, f'e.{method}.c32.p99'))} ms)",
               le(p99, 0.25))
    mr = ratio(m(B, "f.mount_rps"), m(D, "f.mount_rps"))
    target("Cross-repo mount ≥ 3× docker-registry", f"{fmt(mr, '×')} ({fmt(m(B, 'f.mount_rps'))} vs "
           f"{fmt(m(D, 'f.mount_rps'))} req/s)", ge(mr, 3.0))
    pr = ratio(m(B, "f.put_rps"), m(D, "f.put_rps"))
    target("Manifest PUT ≥ 3× docker-registry", f"{fmt(pr, '×')} ({fmt(m(B, 'f.put_rps'))} vs "
           f"{fmt(m(D, 'f.put_rps'))} req/s)", ge(pr, 3.0))
    target("Idle RSS ≤ docker-registry's", f"{fmt(m(B, 'g.rss_idle'))} vs {fmt(m(D, 'g.rss_idle'))} MiB",
           le(m(B, "g.rss_idle"), m(D, "g.rss_idle")))
    bh = max((v for v in (m(B, "g.hwm_mono"), m(B, "g.hwm_chunked")) if v is not None), default=None)
    dh = max((v for v in (m(D, "g.hwm_mono"), m(D, "g.hwm_chunked")) if v is not None), default=None)
    target(f"Peak RSS during the {big} pushes ≤ docker-registry's", f"{fmt(bh)} vs {fmt(dh)} MiB", le(bh, dh))
    gr = m(B, "g.rss_growth")
    target(f"RSS flat while {big} streams in (max − min ≤ 32 MiB)", f"{fmt(gr)} MiB", le(gr, 32))
    w("")

    # ---- caveats
    w("## Caveats\n")
    w(f"- A small, noisy VM ({info['nproc']} vCPUs, shared host): run-to-run variation of 10-20 % is normal; "
      "compare ratios from the same run rather than absolute numbers across runs. Other work on the machine "
      "(for example cargo builds) skews results: the load average at the start and end is in the header, and "
      "at the start of each round in the appendix; a 1-minute load above 1 on 2 CPUs means the servers "
      "shared the CPUs with something else.")
    w("- Client and server share the machine and its CPUs: wrk (up to 2 threads), the Python driver and the "
      "server compete for the same 2 cores, so the req/s and latency figures are a lower bound for the server "
      "and compress the ratios. The Python client is single-core (GIL) for the mount and manifest-PUT tests; its "
      "CPU use is shown so that a client-bound result can be recognised (≈ 1 core busy means the client, not "
      "the server, is the limit).")
    w("- fsync versus no fsync: Bonded (default) makes every blob and manifest durable before it answers 201; "
      "docker-registry does not, so its push numbers exclude the writeback. Between scenarios the driver calls "
      "`sync` (outside any measurement) so that one server's writeback does not land in the next one's numbers. "
      "The *bonded (relaxed)* column is the like-for-like comparison.")
    w("- Pushes stream a pre-generated random file with `sendfile(2)`; “last byte → 201” is measured from the "
      "moment the last body byte was handed to the kernel (loopback socket buffers of a few MiB may still be "
      "in flight) to the response status line.")
    w(f"- Pull is measured on the second GET of the blob (the first warms the page cache): it measures the "
      "server's serving path, not the disk.")
    w("- Server CPU is utime + stime of the server process from `/proc/<pid>/stat` (all threads, clock ticks of "
      f"1/{TICK} s) sampled before and after each measurement; it includes logging (Bonded logs each request "
      "at its default `info` level, docker-registry writes its access log).")
    w("- Each number is a median of rounds, and each round is one run per server, so the medians of a "
      "`--quick` run are single samples.")
    if bench.errors:
        w("\n### Errors during this run\n")
        for e in bench.errors:
            w(f"- {e}")
    w("")

    # ---- appendix
    w("## Appendix: per-round numbers\n")
    w("<details><summary>Raw values for every round (click to expand)</summary>\n")
    for i, order in enumerate(bench.orders):
        w(f"- Round {i + 1} order: {', '.join(order)}; 1-minute load average at its start: "
          f"{bench.round_load[i]:.2f}")
    w("")
    w(f"| Metric | Server | {' | '.join(f'round {i + 1}' for i in range(bench.rounds))} |")
    w(f"|---|---|{'---:|' * bench.rounds}")
    keys = sorted({k for kind in ALL for k in R[kind]})
    for key in keys:
        for kind in ALL:
            if key in R[kind]:
                w(f"| `{key}` | {kind} | {' | '.join(fmt(v) for v in R[kind][key])} |")
    w("\nUnits: `*.mibps` MiB/s, `*.cpu` server CPU s/GiB, `*_ms`/`p50`/`p99` ms, `*_us`/`cpu_us` µs, "
      "`*_rps`/`rps` requests/s, `g.*` MiB, `*_client` CPU cores of the benchmark client, `i.skopeo_s` s.\n")
    w("</details>\n")
    text = "\n".join(out)
    # Keep the sections that scripts/bench-scan and scripts/bench-sign maintain between their
    # markers.
    try:
        with open(path) as f:
            previous = f.read()
        for name in ("scan", "sign"):
            begin, end = f"<!-- {name}-bench:begin -->", f"<!-- {name}-bench:end -->"
            if begin in previous and end in previous:
                kept = previous[previous.index(begin):previous.index(end) + len(end)]
                text = text.rstrip("\n") + "\n\n" + kept + "\n"
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 round, 256 MiB blobs, shorter load tests")
    ap.add_argument("--bonded-bin", default=os.environ.get("BONDED_BIN")
                    or os.path.join(repo, "target", "release", "bonded"))
    ap.add_argument("--rounds", type=int, help="rounds (default 3, --quick 1)")
    ap.add_argument("--size-mib", type=int, help="big blob size in MiB (default 1024, --quick 256)")
    ap.add_argument("--wrk-seconds", type=int, help="duration of each wrk cell (default 8, --quick 3)")
    ap.add_argument("--requests", type=int, help="mount / manifest PUT requests (default 2000, --quick 500)")
    ap.add_argument("--only", help="comma-separated scenario letters to run (a,b,c,d,e,f,h,i); for debugging")
    ap.add_argument("--output", default=os.path.join(repo, "docs", "PERFORMANCE.md"))
    ap.add_argument("--raw-json", help="also write the raw results as JSON to this file")
    ap.add_argument("--workdir", default=None, help="parent of the temporary directory (default: $TMPDIR or /tmp)")
    ap.add_argument("--keep-workdir", action="store_true")
    args = ap.parse_args()
    if not os.access(args.bonded_bin, os.X_OK):
        sys.exit(f"bench.py: bonded binary {args.bonded_bin} not found or not executable (set BONDED_BIN)")
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    bench = Bench(args)
    try:
        bench.run()
        write_report(bench, args.output)
        if args.raw_json:
            with open(args.raw_json, "w") as f:
                json.dump({"results": bench.results, "errors": bench.errors, "modes": bench.modes,
                           "orders": bench.orders, "elapsed_s": bench.elapsed, "disk_mib_s": bench.disk,
                           "sha256_gib_s": bench.sha256_gib_s}, f, indent=1)
        log(f"done in {bench.elapsed / 60:.1f} min; wrote {args.output}")
    except ServerError as e:
        print(f"bench.py: server failure:\n{e}", file=sys.stderr)
        sys.exit(1)
    finally:
        kill_all()
        bench.cleanup()
    if bench.errors:
        log(f"{len(bench.errors)} error(s) during the run; see the report")
        sys.exit(1)


if __name__ == "__main__":
    main()
