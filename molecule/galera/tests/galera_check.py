#!/usr/bin/env python3
"""Drives the Galera checks of molecule/galera against a deployed cluster (3 nodes).

Environment: GALERA_INVENTORY (inventory source(s), comma-separated), GALERA_PROJECT (the
repository), GALERA_SECRETS (a directory for the test user's password), optional GALERA_GROUP
(default `database`), GALERA_SSH_KEY (default PROJECT/.lab/ssh/id_ed25519), GALERA_CLIENT
(the address the nodes see the deploy host by, default 198.51.100.1), GALERA_CHECK_PORT (9200).

1. rows written on the first node are read on the last;
2. kill -9 of the node being written to during a loop of acknowledged inserts (the writer
   moves on to the next node as HAProxy would): the node restarts, rejoins, and every
   acknowledged row is on every node;
3. full outage: the last node stopped cleanly (it becomes stale), writes go on, then the
   other two are killed; playbooks/galera-recover.yml must bootstrap from a most advanced
   node (never the stale one): every acknowledged row is on every node; a second run of the
   playbook changes nothing.
Prints `galera: ...` lines with the measurements; exits non-zero on the first failure.
"""

import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared", "files"))
import galera_writes  # noqa: E402
from labssh import ssh_argv  # noqa: E402

PROJECT = os.environ["GALERA_PROJECT"]
INVENTORY = os.environ["GALERA_INVENTORY"]
GROUP = os.environ.get("GALERA_GROUP", "database")
SSH_KEY = os.environ.get("GALERA_SSH_KEY", os.path.join(PROJECT, ".lab", "ssh", "id_ed25519"))
CLIENT = os.environ.get("GALERA_CLIENT", "198.51.100.1")
CHECK_PORT = int(os.environ.get("GALERA_CHECK_PORT", "9200"))
SECRETS = os.environ["GALERA_SECRETS"]
WORK = os.environ.get("GALERA_WORK", SECRETS)
USER, DATABASE = "galera_test", "galera_test"


# ansible-playbook and ansible-inventory of the same virtualenv as this interpreter, if any.
BIN = os.path.dirname(sys.executable)


def tool(name):
    path = os.path.join(BIN, name)
    return path if os.path.exists(path) else name


def log(msg):
    print(f"galera: {msg}", flush=True)


def fail(msg):
    log(f"FAILED {msg}")
    sys.exit(1)


def nodes():
    out = subprocess.run(
        [tool("ansible-inventory"), "-i", INVENTORY, "--list"], check=True, capture_output=True, text=True
    ).stdout
    inv = json.loads(out)
    names = inv[GROUP]["hosts"]
    hostvars = inv["_meta"]["hostvars"]
    return [(name, hostvars[name].get("ansible_host", name)) for name in names]


def ssh(address, command, check=True):
    return subprocess.run(ssh_argv(SSH_KEY, address, command), check=check, capture_output=True, text=True)


def ssh_parallel(addresses, command):
    procs = [subprocess.Popen(ssh_argv(SSH_KEY, a, command)) for a in addresses]
    for proc in procs:
        proc.wait()


def check_port(address):
    """HTTP status of the node's Galera check (0 when it does not answer)."""
    try:
        with urllib.request.urlopen(f"http://{address}:{CHECK_PORT}/", timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def wait_serving(addresses, timeout=600):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if all(check_port(a) == 200 for a in addresses):
            return time.monotonic() - start
        time.sleep(1)
    fail(
        f"not all of {addresses} answer 200 on {CHECK_PORT} after {timeout} s: "
        f"{[check_port(a) for a in addresses]}"
    )


def playbook(name, *extra):
    """(seconds, changed tasks, output) of a playbook run; fails the check if it fails."""
    start = time.monotonic()
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(
        [tool("ansible-playbook"), "-i", INVENTORY, os.path.join(PROJECT, "playbooks", name), *extra],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        env=env,
    )
    took = time.monotonic() - start
    output = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout)
    if proc.returncode != 0:
        print(output[-6000:], proc.stderr[-3000:])
        fail(f"{name} failed (rc={proc.returncode})")
    recap = output[output.rfind("PLAY RECAP") :]
    counts = re.findall(r"\bchanged=(\d+)", recap)
    if not counts:
        fail(f"no PLAY RECAP in the output of {name}")
    return took, sum(int(c) for c in counts), output


def verify(endpoints, password, acked_path, what):
    result = galera_writes.check(endpoints, USER, password, DATABASE, acked_path)
    acked, failed = galera_writes.read_acked(acked_path)
    for endpoint, r in result.items():
        log(
            f"{what}: {endpoint} rows={r['rows']} acked={len(acked)} unacknowledged={len(failed)} "
            f"missing={len(r['missing'])}"
        )
        if r["missing"]:
            fail(f"{what}: acknowledged rows missing on {endpoint}: {r['missing'][:20]}")


def main():
    os.makedirs(SECRETS, exist_ok=True)
    hosts = nodes()
    if len(hosts) < 3:
        fail(f"group {GROUP} has {len(hosts)} hosts, the checks need 3")
    addresses = [a for _n, a in hosts]
    endpoints = [f"{a}:3306" for a in addresses]
    pw_file = os.path.join(SECRETS, "galera_test")
    if not os.path.exists(pw_file):
        with open(os.open(pw_file, os.O_WRONLY | os.O_CREAT, 0o600), "w", encoding="utf-8") as f:
            f.write(secrets.token_urlsafe(24))
    password = open(pw_file, encoding="utf-8").read().strip()
    acked_path = os.path.join(WORK, f"galera_acked_{int(time.time())}.jsonl")

    wait_serving(addresses, 60)
    log(f"every node answers 200 on port {CHECK_PORT}")
    # The test user, from the deploy host only, created once (Galera replicates it).
    ssh(
        addresses[0],
        (
            f'mysql -e "CREATE DATABASE IF NOT EXISTS {DATABASE}; '
            f"CREATE USER IF NOT EXISTS '{USER}'@'{CLIENT}' IDENTIFIED BY '{password}'; "
            f"GRANT ALL ON {DATABASE}.* TO '{USER}'@'{CLIENT}'\""
        ),
    )
    galera_writes.setup(endpoints[0], USER, password, DATABASE)

    # 1. Written on the first node, read on the last.
    writer = galera_writes.Writer(
        endpoints[:1], USER, password, DATABASE, acked_path, first=1, count=20, interval=0
    )
    writer.run()
    if writer.failed:
        fail(f"writes to {endpoints[0]} failed: {writer.errors[:3]}")
    verify(endpoints[-1:], password, acked_path, "first->last")

    # 2. kill -9 of the node being written to.
    writer = galera_writes.Writer(
        endpoints, USER, password, DATABASE, acked_path, first=100000, seconds=30, interval=0.01
    )
    writer.start()
    time.sleep(5)
    killed = time.monotonic()
    ssh(addresses[0], "systemctl kill --signal=KILL mariadb")
    log(f"kill -9: mariadbd killed on {hosts[0][0]} after {len(writer.acked)} acknowledged inserts")
    time.sleep(1)
    status_after_kill = check_port(addresses[0])
    time.sleep(4)
    # Debian's unit restarts it on its own (Restart=on-abort); start it in case it did not.
    ssh(addresses[0], "systemctl start mariadb")
    rejoin = wait_serving(addresses[:1], 600)
    log(
        f"kill -9: check port of the killed node 1 s after the kill: {status_after_kill}; "
        f"back Synced {time.monotonic() - killed:.1f} s after the kill "
        f"(start to Synced {rejoin:.1f} s)"
    )
    writer.join()
    log(
        f"kill -9: writer acked={len(writer.acked)} failed={len(writer.failed)} "
        f"first errors={writer.errors[:2]}"
    )
    if status_after_kill == 200:
        fail("the check port answered 200 for a killed node")
    wait_serving(addresses, 600)
    verify(endpoints, password, acked_path, "after kill -9")

    # 3. Full outage with a stale node, then galera-recover.yml.
    writer = galera_writes.Writer(
        endpoints[:1], USER, password, DATABASE, acked_path, first=200000, seconds=600, interval=0.01
    )
    writer.start()
    time.sleep(3)
    ssh(addresses[-1], "systemctl stop mariadb")
    stale_at = len(writer.acked)
    time.sleep(3)
    if len(writer.acked) <= stale_at:
        fail("no write acknowledged after the last node stopped")
    ssh_parallel(addresses[:-1], "systemctl kill --signal=KILL mariadb; systemctl stop mariadb")
    time.sleep(1)
    writer.stop()
    writer.join()
    grastate = [
        ssh(a, "grep -E 'seqno|safe' /var/lib/mysql/grastate.dat | xargs", check=False).stdout.strip()
        for a in addresses
    ]
    log(
        f"outage: {hosts[-1][0]} stopped cleanly after {stale_at} acknowledged inserts (stale), "
        f"the others killed after {len(writer.acked)}; grastate.dat: {grastate}"
    )
    took, changed, out = playbook("galera-recover.yml")
    chosen = re.findall(r"Bootstrapping from (\S+)", out)
    log(f"recovery: galera-recover.yml took {took:.1f} s, changed={changed}, bootstrapped {chosen}")
    if not chosen or chosen[0] == hosts[-1][0]:
        fail(f"the recovery bootstrapped {chosen}, not one of the most advanced nodes")
    wait_serving(addresses, 600)
    verify(endpoints, password, acked_path, "after recovery")
    took, changed, _ = playbook("galera-recover.yml")
    log(f"recovery again on a healthy cluster: {took:.1f} s, changed={changed}")
    if changed:
        fail("galera-recover.yml changed a healthy cluster")
    log("all checks passed")


if __name__ == "__main__":
    main()
