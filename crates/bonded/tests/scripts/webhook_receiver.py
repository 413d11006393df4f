"""A webhook receiver for the seed-flow test, independent of Bonded's code: Python's standard
library checks each delivery's Standard Webhooks signature (HMAC-SHA256 over
`id.timestamp.body` with the base64 secret after `whsec_`) and appends one JSON line per
request to OUT: the headers that matter, whether the signature verified, and the body.

Usage: python3 webhook_receiver.py PORT SECRET OUT
"""

import base64
import hashlib
import hmac
import http.server
import json
import sys

PORT, SECRET, OUT = int(sys.argv[1]), sys.argv[2], sys.argv[3]
KEY = base64.b64decode(SECRET.removeprefix("whsec_"))


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        msg_id = self.headers.get("webhook-id", "")
        ts = self.headers.get("webhook-timestamp", "")
        expected = base64.b64encode(
            hmac.new(KEY, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
        given = [s.split(",", 1)[1] for s in self.headers.get("webhook-signature", "").split()
                 if s.startswith("v1,")]
        valid = any(hmac.compare_digest(expected, g) for g in given)
        with open(OUT, "a") as f:
            f.write(json.dumps({
                "valid": valid,
                "id": msg_id,
                "content_type": self.headers.get("Content-Type"),
                "body": json.loads(body or b"null"),
            }) + "\n")
        self.send_response(204 if valid else 400)
        self.end_headers()

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
