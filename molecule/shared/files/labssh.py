"""The ssh command line that reaches a lab host as root with the lab's key (lab/README.md):
host keys are not pinned (a host re-created gets new ones), never a prompt."""


def ssh_argv(key: str, address: str, command: str) -> list[str]:
    return [
        "ssh", "-i", key,
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
        "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
        f"root@{address}", command,
    ]  # fmt: skip
