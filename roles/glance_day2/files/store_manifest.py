#!/usr/bin/env python3
"""The file store's manifest: `make DIR` prints {name: {size, sha256, sha512}} for every file
directly in DIR; `verify DIR MANIFEST` exits 1 listing every file that is missing or differs.
Standalone because: it runs on the store host itself (ansible.builtin.script, the target's
python3, standard library only), where the image files are; it shares no code with the modules.
"""

import hashlib
import json
import os
import sys


def digest(path):
    sha256, sha512 = hashlib.sha256(), hashlib.sha512()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            sha256.update(chunk)
            sha512.update(chunk)
    return {"size": os.path.getsize(path), "sha256": sha256.hexdigest(), "sha512": sha512.hexdigest()}


def make(directory):
    names = sorted(n for n in os.listdir(directory) if os.path.isfile(os.path.join(directory, n)))
    return {name: digest(os.path.join(directory, name)) for name in names}


def main(argv):
    if len(argv) == 2 and argv[0] == "make":
        print(json.dumps(make(argv[1]), indent=1, sort_keys=True))
        return 0
    if len(argv) == 3 and argv[0] == "verify":
        with open(argv[2]) as handle:
            expected = json.load(handle)
        bad = []
        for name, want in sorted(expected.items()):
            path = os.path.join(argv[1], name)
            if not os.path.isfile(path):
                bad.append(f"{name}: missing")
            elif digest(path) != want:
                bad.append(f"{name}: differs from the manifest")
        print("\n".join(bad) or f"{len(expected)} files match the manifest")
        return 1 if bad else 0
    print("usage: store_manifest.py make DIR | verify DIR MANIFEST", file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
