"""roles/keystone's gunicorn.conf.py: valid Python that loads Keystone's policy in each worker
before it serves (the race it closes: service/tests/e2e/test_e2e_keystone_cold_worker.py)."""

from __future__ import annotations

from pathlib import Path

import jinja2

ROLE = Path(__file__).resolve().parent.parent / "roles" / "keystone"


def _file_lookup(kind: str, name: str) -> str:
    # Ansible's file lookup inside a role template: the role's files/, trailing whitespace cut.
    assert kind == "ansible.builtin.file"
    return (ROLE / "files" / name).read_text().rstrip()


def render() -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(ROLE / "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
    )
    env.globals["lookup"] = _file_lookup
    return env.get_template("gunicorn.conf.py.j2").render(
        ansible_managed="managed",
        keystone_bind_host="198.51.100.10",
        keystone_port=5000,
        keystone_workers=2,
        keystone_threads=4,
    )


def test_the_config_defines_the_policy_hook() -> None:
    namespace: dict = {}
    exec(compile(render(), "gunicorn.conf.py", "exec"), namespace)  # as gunicorn reads it
    assert namespace["workers"] == 2
    assert callable(namespace["post_worker_init"])
    assert "load_rules()" in render()
