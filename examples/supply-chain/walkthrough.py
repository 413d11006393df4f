#!/usr/bin/env python3
"""The seed flow of Bonded's supply-chain pipeline, runnable: a vulnerability DB built from
real advisories, a vulnerable and a fixed image pushed to dev/app and signed by CI, a
promotion rule, a webhook receiver that checks the signatures of what it receives, the fixed
image promoted to prod/app and signed by the server (`bonded verify` passes), the vulnerable
one rejected with its CVE id, a DB update that turns up a new critical finding in the
promoted image, and the audit log verified before and after one stored entry is edited.

Usage: examples/supply-chain/walkthrough.py [--bonded PATH]   (default: target/release/bonded)
Needs only Python 3 and the bonded binary. Exits non-zero if any step does not happen.
"""

import argparse
import base64
import gzip
import hashlib
import hmac
import http.client
import http.server
import io
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OSV = os.path.join(ROOT, "crates/scan/tests/fixtures/e2e/advisories/osv")
SECRET = "whsec_" + base64.b64encode(b"supply-chain walkthrough secret!").decode()
TOKEN = "walkthrough-admin-token-0123456789"
OCI = "application/vnd.oci.image.manifest.v1+json"


def say(text):
    print(f"\n== {text}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    return r.status, r.read()


def push(port, repo, tag, packages):
    """An image whose layer holds npm packages {name: version}, pushed by plain HTTP."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, version in packages.items():
            data = json.dumps({"name": name, "version": version}).encode()
            info = tarfile.TarInfo(f"opt/app/node_modules/{name}/package.json")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    layer_tar = raw.getvalue()
    layer = gzip.compress(layer_tar, mtime=0)
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
        "type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer_tar).hexdigest()]}}).encode()
    descriptors = []
    for data, media_type in [(config, "application/vnd.oci.image.config.v1+json"),
                             (layer, "application/vnd.oci.image.layer.v1.tar+gzip")]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        status, _ = call(port, "POST", f"/v2/{repo}/blobs/uploads/?digest={digest}", data)
        assert status == 201, f"blob push answered {status}"
        descriptors.append({"mediaType": media_type, "digest": digest, "size": len(data)})
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI, "config": descriptors[0],
                           "layers": descriptors[1:]}).encode()
    status, _ = call(port, "PUT", f"/v2/{repo}/manifests/{tag}", manifest, {"Content-Type": OCI})
    assert status == 201, f"manifest push answered {status}"
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


def receiver(out):
    """A webhook receiver that checks every Standard Webhooks signature (HMAC-SHA256)."""
    key = base64.b64decode(SECRET.removeprefix("whsec_"))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            signed = f"{self.headers['webhook-id']}.{self.headers['webhook-timestamp']}.".encode() + body
            expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
            valid = any(hmac.compare_digest(expected, s.split(",", 1)[1])
                        for s in self.headers.get("webhook-signature", "").split() if s.startswith("v1,"))
            event = json.loads(body)
            out.append((valid, event))
            print(f"   webhook: {event['type']} {event.get('subject', '')[:19]}… signature "
                  f"{'verified' if valid else 'INVALID'}", flush=True)
            self.send_response(204 if valid else 401)
            self.end_headers()

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def wait(what, check, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    sys.exit(f"walkthrough failed: {what} did not happen")


def decision(port, tag, verdict):
    status, body = call(port, "GET", "/api/v1/promotions/blessed")
    for d in json.loads(body).get("decisions", []):
        if d["repository"] == "dev/app" and d["tag"] == tag and d["verdict"] == verdict:
            return d
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bonded", default=os.path.join(ROOT, "target/release/bonded"))
    args = ap.parse_args()
    bonded = args.bonded
    work = tempfile.mkdtemp(prefix="bonded-walkthrough-")
    env = dict(os.environ, BONDED_PASSWORD="walkthrough", BONDED_ADMIN_TOKEN=TOKEN)
    run = lambda *a: subprocess.run([bonded, *a], env=env, check=True, capture_output=True, text=True)

    say("A vulnerability DB from GitHub's advisory for lodash (CVE-2019-10744, critical)")
    db = os.path.join(work, "vuln.db")
    run("db", "build", "--out", db, os.path.join(OSV, "GHSA-jf85-cpcp-j695.json"))
    say("CI's signing key")
    run("key", "generate", "--output-key-prefix", os.path.join(work, "ci"))
    deliveries = []
    hook_port = receiver(deliveries)
    port = free_port()
    config = os.path.join(work, "bonded.toml")
    with open(config, "w") as f:
        f.write(f"""[scan]
db = "{db}"
db_check_secs = 1
[trust.authorities.ci]
keys = ["{work}/ci.pub"]

[[webhook]]
name = "ci"
url = "http://127.0.0.1:{hook_port}/hooks/bonded"
events = ["promotion.succeeded", "promotion.rejected"]
secret = "{SECRET}"
allow_private = true

[[promotion]]
name = "blessed"
from = "dev/**"
tags = "v*"
to = "prod/{{name}}"
tag = "%n"
when = [
  {{ rule = "vulnerabilities.critical == 0", message = "'critical findings: ' + critical_ids().join(', ')" }},
  "signed_by('ci')",
]
sign = true
copy_referrers = true
immutable = true
""")
    print(open(config).read())
    say(f"bonded serve on 127.0.0.1:{port}")
    server = subprocess.Popen([bonded, "serve", "--config", config, "--data-dir", os.path.join(work, "data"),
                               "--listen", f"127.0.0.1:{port}"], env=env,
                              stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "server.log"), "w"))
    try:
        wait("the server start", lambda: _ok(port))
        say("CI pushes a vulnerable image (lodash 4.17.11) as dev/app:v1 and a fixed one (4.17.21) as dev/app:v2, and signs both")
        push(port, "dev/app", "v1", {"lodash": "4.17.11", "minimist": "1.2.5"})
        v2 = push(port, "dev/app", "v2", {"lodash": "4.17.21", "minimist": "1.2.5"})
        for tag in ["v1", "v2"]:
            run("sign", "--plain-http", "--key", os.path.join(work, "ci.key"), f"127.0.0.1:{port}/dev/app:{tag}")
        say("The fixed image is promoted to prod/app:v2 and signed by the server")
        d = wait("the promotion of v2", lambda: decision(port, "v2", "promoted"))
        print("   decision:", json.dumps(d["decision"]["conditions"]))
        status, pem = call(port, "GET", "/api/v1/authorities/bonded", headers={"Accept": "application/x-pem-file"})
        with open(os.path.join(work, "server.pub"), "wb") as f:
            f.write(pem)
        out = run("verify", "--plain-http", "--key", os.path.join(work, "server.pub"), f"127.0.0.1:{port}/prod/app:v2")
        print("   bonded verify prod/app:v2 with the server's key: passed")
        say("The vulnerable image is rejected, with the CVE id in the decision, and never reaches prod")
        d = wait("the rejection of v1", lambda: decision(port, "v1", "rejected"))
        print("   reasons:", d["decision"]["reasons"])
        assert "CVE-2019-10744" in json.dumps(d["decision"]["reasons"])
        assert call(port, "GET", "/v2/prod/app/manifests/v1", headers={"Accept": OCI})[0] == 404
        say("A DB update adds minimist's critical CVE-2021-44906: the promoted image's verdict changes")
        partial = db + ".new"
        run("db", "build", "--out", partial, os.path.join(OSV, "GHSA-jf85-cpcp-j695.json"),
            os.path.join(OSV, "GHSA-xvch-5gv4-984h.json"))
        os.replace(partial, db)
        d = wait("the new verdict of v2", lambda: decision(port, "v2", "rejected"))
        print("   reasons:", d["decision"]["reasons"])
        wait("the rejection webhook", lambda: any(e["type"] == "dev.bonded.promotion.rejected"
                                                  and e.get("subject") == v2 for _, e in deliveries))
        assert deliveries and all(valid for valid, _ in deliveries), "a delivery failed its signature check"
        say("The audit log verifies")
        time.sleep(1)
        print(run("audit", "verify", "--data-dir", os.path.join(work, "data")).stdout)
    finally:
        server.terminate()
        server.wait(30)
    say("Someone edits one stored audit entry: verification fails and names it")
    con = sqlite3.connect(os.path.join(work, "data", "bonded.db"))
    (seq,) = con.execute("SELECT min(seq) FROM audit_entries WHERE CAST(entry AS TEXT) LIKE '%dev/app%'").fetchone()
    con.execute("UPDATE audit_entries SET entry = CAST(replace(CAST(entry AS TEXT), 'dev/app', 'dev/ap2') AS BLOB) "
                "WHERE seq = ?", (seq,))
    con.commit()
    print(f"   edited entry {seq} (dev/app -> dev/ap2)")
    con.close()
    failed = subprocess.run([bonded, "audit", "verify", "--data-dir", os.path.join(work, "data")],
                            capture_output=True, text=True)
    print(failed.stdout)
    if failed.returncode != 1 or f"entry {seq} was changed" not in failed.stdout:
        sys.exit("walkthrough failed: the edited audit log verified, or the report does not name the entry")
    say(f"Done. Everything is in {work}")


def _ok(port):
    try:
        return call(port, "GET", "/healthz")[0] == 200
    except OSError:
        return False


if __name__ == "__main__":
    main()
