"""python-glanceclient as a user runs it, in its own process: ``upload`` or ``download``.

Usage: python gc_client.py upload|download URL TOKEN IMAGE_ID [FILE]
Prints ``{"seconds": ..., "bytes": ...}``. glanceclient sends uploads chunked (64 KiB pieces)
and checks the downloaded data against the image's hash, as it does for users.
"""

from __future__ import annotations

import json
import os
import sys
import time

from glanceclient import Client


def main(argv: list[str]) -> int:
    op, url, token, image_id = argv[:4]
    client = Client("2", endpoint=url, token=token)
    start = time.perf_counter()
    if op == "upload":
        with open(argv[4], "rb") as f:
            client.images.upload(image_id, f)
        size = os.path.getsize(argv[4])
    elif op == "download":
        size = 0
        for chunk in client.images.data(image_id):
            size += len(chunk)
    else:
        print(f"unknown operation {op!r}", file=sys.stderr)
        return 2
    print(json.dumps({"seconds": time.perf_counter() - start, "bytes": size}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
