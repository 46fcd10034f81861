"""docs/DAY2.md and docs/DEPLOY.md say what the code does.

Each test reads the code the sentence is about (handlers, tasks, defaults) and fails when the
code changes under the doc, or the doc drifts from it. The behaviour itself is checked end to
end by molecule/day2 (reload not restart, rollback, restore onto a newer release).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DAY2 = (ROOT / "docs/DAY2.md").read_text()
DEPLOY = (ROOT / "docs/DEPLOY.md").read_text()


def section(text: str, title: str) -> str:
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 3)
    return text[start : end if end > 0 else None]


def sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=\.)\s+", " ".join(text.split()))]


def load(path: str):
    return yaml.safe_load((ROOT / path).read_text())


def config_file_tasks() -> list[dict]:
    """roles/glance's tasks that write the real glance-api.conf / glance-registry.conf."""
    tasks = load("roles/glance/tasks/config.yml")
    return [
        t
        for t in tasks
        if "ansible.builtin.template" in t
        and re.search(
            r"glance_etc_dir \}\}/glance-(api|registry)\.conf$", t["ansible.builtin.template"]["dest"]
        )
    ]


def test_rotation_reloads_and_the_doc_says_so() -> None:
    writes = config_file_tasks()
    assert len(writes) == 2
    notified = [t["notify"] for t in writes]
    assert all(n.startswith("Reload ") for n in notified), notified
    # rotate-credentials.yml applies them with roles/glance's config.yml and flushes the handlers.
    plays = load("playbooks/rotate-credentials.yml")
    rollout = plays[-1]["tasks"]
    assert rollout[0]["ansible.builtin.include_role"] == {"name": "glance", "tasks_from": "config"}
    assert "ansible.builtin.meta" in rollout[1] and rollout[1]["ansible.builtin.meta"] == "flush_handlers"
    playbook_text = (ROOT / "playbooks/rotate-credentials.yml").read_text().lower()
    assert "restart" not in playbook_text, "rotate-credentials.yml speaks of restarts; it reloads"

    rotation = section(DAY2, "Credential rotation")
    assert "reload" in rotation.lower()
    assert not re.search(r"\brestart(s|ing)?\b", rotation, re.I), "DAY2.md says the rotation restarts"


def test_diff_shows_masked_previews_and_the_doc_says_so() -> None:
    tasks = load("roles/glance/tasks/config.yml")
    for task in config_file_tasks():
        assert task.get("diff") is False and task.get("no_log") is True, task["name"]
    previews = [t for t in tasks if t.get("vars", {}).get("glance_config_redact") is True]
    assert len(previews) >= 2, "the masked previews (what --diff shows) are gone"
    for text in (DAY2, DEPLOY):
        for sentence in sentences(text):
            if "--diff" in sentence and re.search(r"secret|password", sentence, re.I):
                hides = re.search(r"mask|except|no secret|none of", sentence)
                assert hides, f"a doc says --diff shows secrets: {sentence!r}"


def test_registry_host_is_the_first_registry_or_the_vip_and_the_docs_say_so() -> None:
    default = load("roles/glance/defaults/main.yml")["glance_registry_host"]
    assert "groups['glance_registry'][0]" in default
    ha = load("inventory/ha-lab/group_vars/all.yml")
    assert ha["glance_registry_host"] == "{{ ha_internal_vip }}"
    for sentence in sentences(section(DAY2, "Credential rotation")):
        if "load balancer" in sentence:
            assert "not" in sentence, f"DAY2.md: a load balancer cannot close the window: {sentence!r}"
    row = next(line for line in DEPLOY.splitlines() if line.startswith("| `glance_registry` |"))
    assert "first" in row and "internal VIP" in row, row


def test_restore_installs_the_release_and_migrates_and_the_doc_says_so() -> None:
    plays = load("playbooks/restore.yml")
    last = plays[-1]["tasks"]
    assert any(t.get("ansible.builtin.include_role", {}).get("name") == "glance" for t in last)
    schema = load("roles/glance/tasks/schema.yml")
    assert any("db_sync" in str(t.get("ansible.builtin.command", "")) for t in schema)
    restore = section(DAY2, "Backup and restore")
    assert "migrated forward" in restore and "newer one in one step" in restore
    assert "run `playbooks/upgrade.yml` (or site.yml)" not in restore


def test_rollback_is_a_restore_and_upgrade_says_so() -> None:
    text = (ROOT / "roles/glance_day2/tasks/upgrade_schema.yml").read_text()
    assert "does not downgrade a schema" in text and "playbooks/restore.yml" in text
    upgrade = section(DAY2, "Upgrade")
    rollback = upgrade[upgrade.index("**Rolling back.**") :]
    assert "playbooks/restore.yml" in rollback and "before the upgrade" in rollback
    assert "the schema is not\ndowngraded (migrations are additive)" not in upgrade
