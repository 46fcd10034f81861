#!/usr/bin/env python3
"""The day-2 playbooks end to end against molecule's all-in-one host.

Uploads three images with known sha512, backs up, deletes one, restores (same ids and sha512),
runs health, rotates both credentials while a client downloads in a loop (counting failed
requests), re-runs the rotation and an upgrade with the same wheelhouse (both changed=0).
Then a release that moves the schema (this checkout plus one migration): the upgrade to it, the
rollback upgrade.yml refuses, site.yml with the old release (refused before it installs
anything), the rollback docs/DAY2.md gives (the old release and the backup taken before the
upgrade, restore.yml), and that backup restored onto the newer release
(restore.yml migrates it forward; upgrade.yml afterwards changed=0).
Lines starting with `day2:` are the measurements. Standard library only (pip builds the wheel).
"""

import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "files"))
import checklib  # noqa: E402
import release  # noqa: E402

DEPLOY = checklib.Deployment.from_env("DAY2")
# The release the scenario deployed (its wheelhouse snapshot) and where roles/glance installs it.
WHEELHOUSE = os.environ["DAY2_WHEELHOUSE"]
VENV = "/opt/glance"
MANAGE = f"{VENV}/bin/glance-manage --config-file /etc/glance/glance-registry.conf"
PLAIN = checklib.PLAIN


def playbook(name, *extra, expect_failure=False):
    cmd = DEPLOY.playbook_cmd(name, *extra)
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ | PLAIN)
    took = time.monotonic() - started
    if expect_failure:
        if proc.returncode == 0:
            print(proc.stdout[-6000:])
            raise SystemExit(f"{name} {' '.join(extra)} succeeded; it should have failed")
        print(f"day2: {name} {' '.join(extra)}: failed as expected in {took:.0f}s")
        return proc.stdout + proc.stderr, None  # the failure's message may be on stderr
    if proc.returncode != 0:
        print(proc.stdout[-6000:], proc.stderr[-3000:])
        raise SystemExit(f"{name} failed (rc {proc.returncode})")
    changed = checklib.recap_changed(proc.stdout)
    print(f"day2: {name} {' '.join(extra)}: ok in {took:.0f}s, changed={changed}")
    return proc.stdout, changed


def on_registry(command):
    """stdout of a command on the first registry host (an ad-hoc ansible run)."""
    cmd = ["ansible", "-i", DEPLOY.inventory, "glance_registry[0]", "-o", "-m", "command", "-a", command]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ | PLAIN)
    found = re.search(r"\(stdout\) (.*)$", re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout).strip())
    if proc.returncode != 0 or not found:
        raise SystemExit(
            f"{command!r} on the registry host failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )
    # The one-line output writes the command's newlines as a backslash and an n.
    return found.group(1).replace("\\n", "\n").strip()


def main_pids():
    """The systemd main PIDs of glance-registry and glance-api (one all-in-one host)."""
    return on_registry("systemctl show --property MainPID --value glance-registry glance-api").split()


def schema_revision():
    return on_registry(f"{MANAGE} db version")


def installed_release():
    """sha256 of the wheelhouse archive the host's virtualenv was installed from."""
    return on_registry(f"cat {VENV}/.wheelhouse-sha256")


def sha256_file(path):
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def newer_release(workdir):
    """This checkout plus one additive migration (molecule/shared/files/release.py)."""
    return release.newer_release(DEPLOY.project, WHEELHOUSE, workdir, "9999_day2_probe", "day2_probe")


def upload(token, name):
    data = secrets.token_bytes(1 << 20)
    body = {"name": name, "disk_format": "raw", "container_format": "bare"}
    with DEPLOY.call("POST", "/v2/images", token, body) as r:
        image_id = json.load(r)["id"]
    DEPLOY.call("PUT", f"/v2/images/{image_id}/file", token, data=data).close()
    return image_id, hashlib.sha512(data).hexdigest()


def check_images(token, expected):
    for image_id, sha in expected.items():
        record = DEPLOY.image(token, image_id)
        assert record["status"] == "active", record
        assert record["os_hash_value"] == sha, (image_id, record["os_hash_value"], sha)
        assert DEPLOY.download_sha512(token, image_id) == sha, image_id


class Downloader(threading.Thread):
    """Downloads one image in a loop on new connections, recording every failure's time."""

    def __init__(self, token, image_id, sha):
        super().__init__(daemon=True)
        self.token, self.image_id, self.sha = token, image_id, sha
        self.stop, self.ok, self.failures = threading.Event(), 0, []

    def run(self):
        while not self.stop.is_set():
            try:
                assert DEPLOY.download_sha512(self.token, self.image_id) == self.sha
                self.ok += 1
            except (urllib.error.URLError, OSError, AssertionError) as exc:
                self.failures.append((time.monotonic(), f"{type(exc).__name__}: {exc}"))
                time.sleep(0.05)


def releases_and_rollback(token, expected):
    """An upgrade that migrates the schema, its rollback, and a restore onto the newer release."""
    old_sha = sha256_file(os.path.join(WHEELHOUSE, "wheelhouse.tar"))
    with tempfile.TemporaryDirectory(prefix="day2-release-") as work:
        newer, probe = newer_release(work)
        new_sha = sha256_file(os.path.join(newer, "wheelhouse.tar"))
        base = schema_revision()
        assert installed_release() == old_sha
        backups = os.path.join(work, "backups")
        playbook("backup.yml", "-e", f"backup_dir={backups}")
        (stamp,) = os.listdir(backups)
        pre_upgrade = os.path.join(backups, stamp)

        _, changed = playbook("upgrade.yml", "-e", f"glance_wheelhouse_src={newer}")
        assert changed > 0, "the upgrade to a new release changed nothing"
        assert (schema_revision(), installed_release()) == (probe, new_sha)
        check_images(token, expected)
        print(f"day2: upgrade to a release with a migration: schema {base} -> {probe}, images intact")

        # The old release does not know the new revision: upgrade.yml must refuse, change nothing.
        out, _ = playbook("upgrade.yml", expect_failure=True)
        assert "does not downgrade a schema" in out, out[-3000:]
        assert (schema_revision(), installed_release()) == (probe, new_sha)
        check_images(token, expected)
        print("day2: upgrade.yml back to the old release: refused, nothing changed, images intact")

        # site.yml with the old release's wheelhouse (the scenario's own): roles/glance refuses
        # before installing anything (tasks/release_guard.yml); the services keep running.
        pids = main_pids()
        out, _ = playbook("../site.yml", expect_failure=True)
        assert f"schema revision {probe}" in out and "Nothing was installed" in out, out[-3000:]
        assert (schema_revision(), installed_release()) == (probe, new_sha)
        assert main_pids() == pids, "site.yml with an older release restarted the services"
        check_images(token, expected)
        print("day2: site.yml with the old release: refused before installing, services untouched")

        # The rollback docs/DAY2.md gives: the old release's wheelhouse + the pre-upgrade backup.
        playbook("restore.yml", "-e", f"restore_from={pre_upgrade}")
        assert (schema_revision(), installed_release()) == (base, old_sha)
        check_images(token, expected)
        print(f"day2: rollback (restore.yml, old release, pre-upgrade backup): schema {base}, images intact")

        # The same backup onto the newer release: restore.yml migrates it forward.
        playbook("restore.yml", "-e", f"restore_from={pre_upgrade}", "-e", f"glance_wheelhouse_src={newer}")
        assert (schema_revision(), installed_release()) == (probe, new_sha)
        check_images(token, expected)
        _, changed = playbook("upgrade.yml", "-e", f"glance_wheelhouse_src={newer}")
        assert changed == 0, "upgrade.yml after a restore onto the newer release changed something"
        print(f"day2: restore onto the newer release: schema {base} -> {probe}, then upgrade.yml changed=0")


def main():
    token = DEPLOY.login()
    expected = dict(upload(token, f"day2-{n}") for n in range(3))
    print(f"day2: uploaded {len(expected)} images")

    with tempfile.TemporaryDirectory(prefix="day2-backup-") as backups:
        playbook("backup.yml", "-e", f"backup_dir={backups}")
        (stamp,) = os.listdir(backups)
        victim = next(iter(expected))
        DEPLOY.call("DELETE", f"/v2/images/{victim}", token).close()
        try:
            DEPLOY.image(token, victim)
            raise SystemExit("the deleted image is still there")
        except urllib.error.HTTPError as exc:
            assert exc.code == 404, exc.code
        playbook("restore.yml", "-e", f"restore_from={backups}/{stamp}")
    check_images(token, expected)
    print("day2: restore: the 3 images are back with the same ids and sha512")

    playbook("health.yml")

    loop = Downloader(token, list(expected)[1], list(expected.values())[1])
    loop.start()
    time.sleep(3)
    secrets_dir = os.environ["DAY2_SECRETS"]
    for name in ("glance_db", "glance_keystone"):
        with open(os.path.join(secrets_dir, name), "w") as handle:
            handle.write(secrets.token_hex(16) + "\n")
    pids = main_pids()
    started = time.monotonic()
    playbook("rotate-credentials.yml")
    time.sleep(3)
    loop.stop.set()
    loop.join()
    window = (loop.failures[-1][0] - loop.failures[0][0]) if loop.failures else 0.0
    print(
        f"day2: rotation under load: {loop.ok} downloads ok, {len(loop.failures)} failed"
        f" (failures spread over {window:.1f}s, first {loop.failures[0][0] - started:.1f}s after the start)"
        if loop.failures
        else f"day2: rotation under load: {loop.ok} downloads ok, 0 failed"
    )
    for _, message in loop.failures[:5]:
        print(f"day2:   {message}")
    # docs/DAY2.md: the new configuration is applied by a reload (SIGHUP: new workers, same
    # master, the socket stays open), not a restart.
    assert main_pids() == pids, f"the rotation restarted a process: {pids} -> {main_pids()}"
    print(f"day2: rotation reloaded glance-registry and glance-api (main PIDs unchanged: {pids})")
    _, changed = playbook("rotate-credentials.yml")
    assert changed == 0, "a second rotation changed something"
    playbook("health.yml")

    _, changed = playbook("upgrade.yml")
    assert changed == 0, "an upgrade with the same wheelhouse changed something"
    check_images(token, expected)

    releases_and_rollback(token, expected)
    print("day2: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
