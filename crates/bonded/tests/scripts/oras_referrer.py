"""Push an artifact that refers to an image (OCI 1.1 `subject`) with the oras Python client,
then pull it back. Prints one JSON object with what happened, for the Rust test to check.

usage: oras_referrer.py HOST:PORT REPO SUBJECT_DIGEST SUBJECT_SIZE WORKDIR
"""
import json
import os
import sys

import oras.oci
import oras.provider

host, repo, digest, size, workdir = sys.argv[1:6]
os.chdir(workdir)
with open("sbom.json", "w") as f:
    f.write('{"sbom":"demo"}\n')

registry = oras.provider.Registry(hostname=host, insecure=True)
subject = oras.oci.Subject(
    mediaType="application/vnd.oci.image.manifest.v1+json", digest=digest, size=int(size)
)
response = registry.push(
    target=f"{host}/{repo}:sbom-referrer",
    files=["sbom.json:application/vnd.example.sbom.v1+json"],
    subject=subject,
    manifest_annotations={"org.example.kind": "sbom"},
)
pulled = registry.pull(target=f"{host}/{repo}:sbom-referrer", outdir=os.path.join(workdir, "pulled"))
content = open(pulled[0]).read() if pulled else ""
print(
    json.dumps(
        {
            "status": response.status_code,
            "oci_subject": response.headers.get("OCI-Subject"),
            "pulled": content,
        }
    )
)
