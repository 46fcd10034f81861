#!/usr/bin/env python3
"""The backend switch end to end against molecule's hosts, as an operator runs it.

Uploads 20 images (random sizes up to 64 MiB, known sha512), starts a client loop (downloads
checking the bytes, listings), then: a dry run changes nothing; file -> rbd; rbd -> s3 killed
after a few images and run again; the same switch run again changes nothing. Checks every id
and sha512, that the objects are only in s3 (rbd pool and file directory empty of them, the
bucket holds them), and that the client loop saw no failed request. Lines starting with
`switch:` are the measurements. Needs boto3 (the deploy host's virtualenv has it).
"""

import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "files"))
import checklib  # noqa: E402

DEPLOY = checklib.Deployment.from_env("SWITCH", timeout=120)
COUNT = int(os.environ.get("SWITCH_IMAGES", "20"))
MAX_SIZE = 64 << 20


def upload_images(token, count):
    rng = random.Random(20261122)
    expected = {}
    for n in range(count):
        size = rng.randint(1, MAX_SIZE)
        data = rng.randbytes(size)
        body = {"name": f"switch-{n:02d}", "disk_format": "raw", "container_format": "bare"}
        with DEPLOY.call("POST", "/v2/images", token, body=body) as resp:
            image_id = json.load(resp)["id"]
        DEPLOY.call("PUT", f"/v2/images/{image_id}/file", token, data=data).close()
        expected[image_id] = (size, hashlib.sha512(data).hexdigest())
    total = sum(s for s, _ in expected.values())
    print(f"switch: uploaded {count} images, {total} bytes ({total / 1048576:.0f} MiB)")
    return expected


class ClientLoop(threading.Thread):
    """Downloads (bytes checked) and listings on new connections until stopped."""

    def __init__(self, token, expected):
        super().__init__(daemon=True)
        self.token, self.expected = token, expected
        self.ok, self.failures = 0, []
        self.stop_event = threading.Event()

    def run(self):
        ids = sorted(self.expected)
        n = 0
        while not self.stop_event.is_set():
            image_id = ids[n % len(ids)]
            n += 1
            try:
                if DEPLOY.download_sha512(self.token, image_id) != self.expected[image_id][1]:
                    self.failures.append(f"{time.strftime('%T')} {image_id}: wrong bytes")
                else:
                    self.ok += 1
                with DEPLOY.call("GET", "/v2/images?limit=100", self.token) as resp:
                    listed = {i["id"] for i in json.load(resp)["images"]}
                if not set(ids) <= listed:
                    self.failures.append(f"{time.strftime('%T')} listing misses images")
                else:
                    self.ok += 1
            except (urllib.error.URLError, OSError, ValueError) as exc:
                self.failures.append(f"{time.strftime('%T')} {image_id}: {exc}")
                time.sleep(0.2)


def playbook_cmd(*extra):
    return DEPLOY.playbook_cmd("backend-switch.yml", *extra)


def switch(target, *extra, label=""):
    started = time.monotonic()
    proc = subprocess.run(
        playbook_cmd("-e", f"glance_switch_target={target}", *extra),
        capture_output=True,
        text=True,
        env=os.environ | checklib.PLAIN,
    )
    took = time.monotonic() - started
    if proc.returncode != 0:
        print(proc.stdout[-8000:], proc.stderr[-3000:])
        raise SystemExit(f"switch to {target} {label} failed (rc {proc.returncode})")
    changed = checklib.recap_changed(proc.stdout)
    progress = re.findall(r"Progress: image \d+ of \d+", proc.stdout)
    rates = re.findall(r"overall ([\d.]+) MiB/s", proc.stdout)
    print(
        f"switch: to {target} {label}: ok in {took:.0f}s, changed={changed}, {len(progress)} images handled"
        + (f", overall {rates[-1]} MiB/s" if rates else "")
    )
    return proc.stdout, changed


def switch_killed(target, after_images):
    """Start the switch and SIGKILL the whole ansible-playbook process group once
    ``after_images`` images have been copied."""
    proc = subprocess.Popen(
        playbook_cmd("-e", f"glance_switch_target={target}"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ | checklib.PLAIN | {"PYTHONUNBUFFERED": "1"},
        start_new_session=True,
    )
    done = 0
    for line in proc.stdout:
        if re.search(r"TASK \[.*Progress: image \d+ of \d+", line):
            done += 1
            if done >= after_images:
                os.killpg(proc.pid, signal.SIGKILL)
                break
    proc.wait(timeout=60)
    print(f"switch: to {target}: killed the playbook after {done} images")
    return done


def host_command(host, command):
    """The command's stdout on a lab host. Read from the json callback: the one-line output
    (-o) carried more than the command printed under molecule's environment."""
    proc = subprocess.run(
        ["ansible", "-i", DEPLOY.inventory, host, "-m", "ansible.builtin.shell", "-a", command],
        capture_output=True,
        text=True,
        env=os.environ
        | {
            **checklib.PLAIN,
            "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
            "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        },
    )
    try:
        result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"][host]
    except (ValueError, KeyError, IndexError):
        output = f"{proc.stdout[-2000:]} {proc.stderr[-2000:]}"
        raise SystemExit(f"{host}: {command}: rc {proc.returncode}: {output}") from None
    if proc.returncode != 0 or result.get("rc", 0) != 0:
        output = f"{result.get('stdout')} {result.get('stderr')} {result.get('msg')}"
        raise SystemExit(f"{host}: {command}: {output}")
    return result.get("stdout", "")


def assert_file_store_empty():
    # "count: N" always prints: an empty stdout has no "(stdout)" part for host_command to split
    # on, and the one-line output may carry more than the command printed.
    left = host_command(
        "switch-ctl",
        "find /var/lib/glance/images -mindepth 1 -printf '%p %s %TT\\n'; "
        "echo count: $(find /var/lib/glance/images -mindepth 1 | wc -l)",
    ).strip()
    count = re.search(r"count: (\d+)", left)
    assert count and count.group(1) == "0", f"old file store not empty: {left!r}"


def s3_keys():
    import boto3
    from botocore.config import Config

    s3 = boto3.client(
        "s3",
        endpoint_url=os.environ["SWITCH_S3_HOST"],
        region_name="us-east-1",
        aws_access_key_id=os.environ["SWITCH_S3_ACCESS"],
        aws_secret_access_key=os.environ["SWITCH_S3_SECRET"],
        config=Config(s3={"addressing_style": "path"}),
    )
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="glance"):
        keys += [obj["Key"] for obj in page.get("Contents", [])]
    return keys


def check_images(token, expected, store):
    for image_id, (size, sha) in expected.items():
        record = DEPLOY.image(token, image_id)
        assert record["status"] == "active", record
        assert record["stores"] == store, (image_id, record["stores"], store)
        assert record["size"] == size and record["os_hash_value"] == sha, record
        assert DEPLOY.download_sha512(token, image_id) == sha, image_id
    print(f"switch: all {len(expected)} images in {store} only, sha512 equal")


def fact_exists():
    path = "/etc/ansible/facts.d/glance_stores.fact"
    return host_command("switch-ctl", f"test -e {path} && echo present || echo absent").strip() == "present"


def remove_leftovers(token):
    """Images of an earlier verify run on the same hosts (molecule verify run twice)."""
    with DEPLOY.call("GET", "/v2/images?limit=1000", token) as resp:
        for old in json.load(resp)["images"]:
            if old.get("name", "").startswith("switch-"):
                DEPLOY.call("DELETE", f"/v2/images/{old['id']}", token).close()


def main():
    token = DEPLOY.login()
    remove_leftovers(token)
    expected = upload_images(token, COUNT)
    loop = ClientLoop(token, expected)
    loop.start()
    try:
        # A dry run plans and changes nothing.
        out, changed = switch("rbd", "-e", "dry_run=true", label="(dry run)")
        assert changed == 0 and "DRY RUN" in out, out[-3000:]
        assert not fact_exists()
        for image_id in expected:
            assert DEPLOY.image(token, image_id)["stores"] == "file"

        switch("rbd")
        check_images(token, expected, "rbd")
        assert_file_store_empty()

        # rbd -> s3, the playbook killed midway, then run again to the same end state.
        switch_killed("s3", 3)
        switch("s3", label="(after the kill)")
        _, changed = switch("s3", label="(again)")
        assert changed == 0, f"a finished switch run again changed {changed}"
        check_images(token, expected, "s3")
    finally:
        loop.stop_event.set()
        loop.join(120)
    print(f"switch: client loop: {loop.ok} requests ok, {len(loop.failures)} failed")
    for failure in loop.failures[:20]:
        print(f"switch:   failed: {failure}")

    rbd = host_command("switch-ceph", "rbd ls images")
    assert not [i for i in expected if i in rbd], f"rbd still holds images: {rbd}"
    keys = s3_keys()
    for image_id in expected:
        assert sum(image_id in key for key in keys) >= 1, f"{image_id} not in the bucket"
    assert_file_store_empty()
    fact = json.loads(host_command("switch-ctl", "cat /etc/ansible/facts.d/glance_stores.fact"))
    assert fact["stores"] == ["s3"] and fact["default"] == "s3" and not fact["in_progress"], fact
    print(f"switch: objects only in s3 ({len(keys)} keys), rbd pool and file directory empty; record {fact}")
    assert not loop.failures, "failed client requests during the switch"
    return 0


if __name__ == "__main__":
    sys.exit(main())
