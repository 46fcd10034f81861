"""Notifications in the toolkit (issue 18): glance-api.conf's [oslo_messaging_notifications]
from the glance_notifications_* variables, the transport_url built from the rabbitmq hosts, its
passwords masked in the --diff preview, the rabbitmq role and its place in site.yml."""

from __future__ import annotations

import configparser
from pathlib import Path

import jinja2
import pytest
import yaml
from test_templates import BASE

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS = yaml.safe_load((ROOT / "roles/glance/defaults/main.yml").read_text())


def render(variables: dict, redact: bool = False) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(ROOT / "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
    )
    return env.get_template("glance-api.conf.j2").render(**BASE, **variables, glance_config_redact=redact)


def parse(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(text)
    return parser


def transport_url(hosts: dict[str, str], password: str, vhost: str = "glance") -> str:
    """The role default's expression, rendered as Ansible would for these hosts."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    return env.from_string(DEFAULTS["glance_notifications_transport_url"]).render(
        glance_notifications_rabbitmq_hosts=list(hosts),
        glance_notifications_rabbitmq_user="glance",
        glance_notifications_rabbitmq_password=password,
        glance_notifications_rabbitmq_port=5672,
        glance_notifications_rabbitmq_vhost=vhost,
        hostvars={name: {"ansible_host": address} for name, address in hosts.items()},
    )


CLUSTER = {"ctl1": "198.51.100.21", "ctl2": "198.51.100.22", "ctl3": "198.51.100.23"}


def test_transport_url_names_every_broker_with_the_password_encoded() -> None:
    url = transport_url(CLUSTER, "p@ss/w,rd")
    assert url == (
        "rabbit://glance:p%40ss%2Fw%2Crd@198.51.100.21:5672,glance:p%40ss%2Fw%2Crd@198.51.100.22:5672,"
        "glance:p%40ss%2Fw%2Crd@198.51.100.23:5672/glance"
    )


def test_driver_is_noop_without_a_broker() -> None:
    env = jinja2.Environment()
    driver = DEFAULTS["glance_notifications_driver"]
    assert env.from_string(driver).render(glance_notifications_rabbitmq_hosts=[]) == "noop"
    assert env.from_string(driver).render(glance_notifications_rabbitmq_hosts=["a"]) == "messagingv2"


def test_noop_writes_no_section() -> None:
    text = render({"glance_notifications_driver": "noop"})
    assert "oslo_messaging_notifications" not in text and "default_publisher_id" not in text
    assert render({}) == text


def test_the_section_with_upstreams_option_names() -> None:
    url = transport_url(CLUSTER, "rabbitpass-1")
    conf = parse(
        render(
            {
                "glance_notifications_driver": "messagingv2",
                "glance_notifications_transport_url": url,
                "glance_notifications_topics": ["notifications", "billing"],
                "glance_notifications_publisher_id": "image.ctl1",
                "glance_notifications_disabled": ["image.update", "metadef_tag"],
            }
        )
    )
    section = conf["oslo_messaging_notifications"]
    assert section["driver"] == "messagingv2"
    assert section["transport_url"] == url
    assert section["topics"] == "notifications,billing"
    assert conf["DEFAULT"]["default_publisher_id"] == "image.ctl1"
    assert conf["DEFAULT"]["disabled_notifications"] == "image.update,metadef_tag"
    # the rest of [DEFAULT] is still there (the section is written twice, oslo.config merges)
    assert conf["DEFAULT"]["registry_host"] == "198.51.100.10"


@pytest.mark.parametrize("hosts", [{"one": "198.51.100.30"}, CLUSTER])
def test_the_preview_masks_every_password_and_only_that(hosts: dict) -> None:
    variables = {
        "glance_notifications_driver": "messagingv2",
        "glance_notifications_transport_url": transport_url(hosts, "rabbitpass-1"),
    }
    real = render(variables).splitlines()
    preview = render(variables, redact=True).splitlines()
    assert "rabbitpass-1" not in "\n".join(preview)
    changed = [(a, b) for a, b in zip(real, preview, strict=True) if a != b]
    # the keystone password, and the transport_url
    (url_line,) = [b for a, b in changed if a.startswith("transport_url")]
    masked = ",".join(f"glance:<redacted>@{address}:5672" for address in hosts.values())
    assert url_line == f"transport_url = rabbit://{masked}/glance"


def test_a_hand_written_url_with_specials_does_not_leak() -> None:
    url = "rabbit://u1:s3c@r/et@198.51.100.5:5672,u2:ot@her@198.51.100.6:5672/v"
    text = render(
        {"glance_notifications_driver": "messaging", "glance_notifications_transport_url": url}, True
    )
    assert parse(text)["oslo_messaging_notifications"]["transport_url"] == (
        "rabbit://u1:<redacted>@198.51.100.5:5672,u2:<redacted>@198.51.100.6:5672/v"
    )


def test_site_deploys_the_broker_before_the_image_service() -> None:
    plays = [p["ansible.builtin.import_playbook"] for p in yaml.safe_load((ROOT / "site.yml").read_text())]
    assert plays.index("playbooks/rabbitmq.yml") < plays.index("playbooks/glance.yml")
    play = yaml.safe_load((ROOT / "playbooks/rabbitmq.yml").read_text())[0]
    assert play["hosts"] == "rabbitmq" and play["roles"] == [{"role": "rabbitmq"}]


def _tasks(name: str) -> list[dict]:
    return yaml.safe_load((ROOT / "roles/rabbitmq/tasks" / name).read_text())


def test_rabbitmq_role_keeps_secrets_out_of_logs_and_diffs() -> None:
    for task in _tasks("main.yml"):
        text = yaml.safe_dump(task)
        if "{{ rabbitmq_password }}" in text or "{{ rabbitmq_erlang_cookie }}" in text:
            assert task.get("no_log") is True, task["name"]
    cookie = next(t for t in _tasks("main.yml") if t["name"] == "Set the cluster's Erlang cookie")
    assert cookie["diff"] is False and cookie["ansible.builtin.copy"]["mode"] == "0400"


def test_rabbitmq_role_is_check_mode_safe_and_joins_only_when_out() -> None:
    for task in _tasks("main.yml"):
        module = next(k for k in task if "." in k)
        if module.startswith("community.rabbitmq") or module in ("ansible.builtin.command",):
            assert "_rabbitmq_live" in str(task.get("when")), task["name"]
    join = next(t for t in _tasks("cluster.yml") if t["name"].startswith("Join"))
    assert "not in" in join["when"] and "running_nodes" in join["when"]
    assert join.get("throttle") == 1
    read = next(t for t in _tasks("cluster.yml") if t["name"].startswith("Read"))
    assert read["changed_when"] is False and read["check_mode"] is False
