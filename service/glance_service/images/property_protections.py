"""Property protections: which callers may create, read, update and delete which custom
property (upstream Glance's ``property_protection_file``).

The file is INI: each section is a regular expression searched in the property's name, in the
file's order (the first section that matches decides; no match: nobody may do anything); its
``create``/``read``/``update``/``delete`` keys, all four required, hold a comma-separated list of
roles (``property_protection_rule_format = roles``) or one policy rule name (``policies``), ``@``
for everyone and ``!`` for no one; an empty value allows no one. ``[os_glance.*]`` (everyone)
is put first, replacing the file's own ``os_glance`` sections: that namespace is Glance's own
and already reserved. A file that cannot be read or has a malformed rule makes glance-api refuse
to start (``InvalidPropertyProtectionFile``).

Off (``None``, no cost) when ``property_protection_file`` is unset.
"""

from __future__ import annotations

import configparser
import dataclasses
import io
import os
import re
from typing import Protocol

from oslo_config import cfg
from oslo_log import log as logging

from glance_service import exceptions
from glance_service.common.registrar import registrar
from glance_service.context import RequestContext

LOG = logging.getLogger(__name__)

OPERATIONS = ("create", "read", "update", "delete")
_OS_GLANCE = "os_glance.*"

property_opts = [
    cfg.StrOpt(
        "property_protection_file",
        help="The property protection file: which roles (or policy rules) may create, read, "
        "update and delete which image properties. Unset: no property protections. A file "
        "that cannot be read or holds a malformed rule stops glance-api from starting.",
    ),
    cfg.StrOpt(
        "property_protection_rule_format",
        default="roles",
        choices=("roles", "policies"),
        help="What the property protection file's values are: comma-separated role names "
        "('roles') or one policy rule name of the policy file ('policies').",
    ),
]

register_opts = registrar((None, property_opts))


class InvalidPropertyProtectionFile(ValueError):
    """The file cannot be used; the message says why (glance-api does not start)."""


@dataclasses.dataclass(frozen=True)
class Rule:
    section: str
    pattern: re.Pattern
    # operation -> roles (lowercased) or [policy rule name]; [] allows no one.
    allowed: dict[str, list[str]]


class PolicyChecker(Protocol):
    def check_rule(self, context: RequestContext, name: str) -> bool: ...


def _read(path: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle, source=path)
    except (OSError, configparser.Error, UnicodeDecodeError) as exc:
        raise InvalidPropertyProtectionFile(
            f"Couldn't find property protection file {path}: {exc}."
        ) from None
    # [os_glance.*] first (everyone), the file's own os_glance sections dropped (upstream's
    # workaround of bug #2085321: os_glance_* properties are Glance's own).
    user = io.StringIO()
    for section in parser.sections():
        if section.startswith("os_glance"):
            parser.remove_section(section)
    parser.write(user)
    merged = configparser.ConfigParser()
    merged.read_dict({_OS_GLANCE: dict.fromkeys(OPERATIONS, "@")})
    try:
        merged.read_string(user.getvalue(), source=path)
    except configparser.Error as exc:
        raise InvalidPropertyProtectionFile(
            f"Couldn't find property protection file {path}: {exc}."
        ) from None
    return merged


def load_rules(path: str, rule_format: str) -> list[Rule]:
    """The rules of ``path`` in the file's order, or ``InvalidPropertyProtectionFile``."""
    if rule_format not in ("roles", "policies"):
        raise InvalidPropertyProtectionFile(
            f"Invalid value '{rule_format}' for 'property_protection_rule_format'. "
            "The permitted values are 'roles' and 'policies'"
        )
    parser = _read(path)
    rules = []
    for section in parser.sections():
        try:
            pattern = re.compile(section)
        except re.error as exc:
            raise InvalidPropertyProtectionFile(
                f"Encountered a malformed property protection rule {section} in {path}: "
                f"not a regular expression ({exc})."
            ) from None
        allowed: dict[str, list[str]] = {}
        for operation in OPERATIONS:
            try:
                value = parser.get(section, operation)
            except (configparser.NoOptionError, configparser.InterpolationError) as exc:
                raise InvalidPropertyProtectionFile(
                    f"Invalid configuration in property protection file {path}: [{section}] has no "
                    f"usable '{operation}' ({exc}); create, read, update and delete are all required."
                ) from None
            allowed[operation] = _permissions(path, section, operation, value, rule_format)
        rules.append(Rule(section, pattern, allowed))
    return rules


def _permissions(path: str, section: str, operation: str, value: str, rule_format: str) -> list[str]:
    if not value:
        LOG.warning(
            "Property protection on operation %s for rule %s is not found. No role will be "
            "allowed to perform this operation.",
            operation,
            section,
        )
        return []
    if rule_format == "policies":
        if "," in value:
            raise InvalidPropertyProtectionFile(
                f"Multiple policies '{value}' not allowed for a given operation ([{section}] "
                f"{operation} in {path}). Policies can be combined in the policy file"
            )
        return [value]
    roles = [role.strip() for role in value.split(",")]
    if "@" in roles and "!" in roles:
        raise InvalidPropertyProtectionFile(
            f"Malformed property protection rule in [{section}] {operation}={value} ({path}): "
            "'@' and '!' are mutually exclusive"
        )
    return [role.lower() for role in roles]


class PropertyRules:
    """The loaded rules of one process; ``check`` answers one question, ``for_context`` gives a
    per-request ``Checker`` that remembers its answers (listings ask the same ones per image)."""

    MATCH_CACHE_SIZE = 10000

    def __init__(self, rules: list[Rule], rule_format: str, policy: PolicyChecker | None = None):
        self.rules = rules
        self.rule_format = rule_format
        self.policy = policy
        self._matched: dict[str, Rule | None] = {}

    @classmethod
    def from_conf(cls, conf: cfg.ConfigOpts, policy: PolicyChecker | None = None) -> PropertyRules | None:
        register_opts(conf)
        if not conf.property_protection_file:
            return None
        fmt = conf.property_protection_rule_format
        return cls(load_rules(find_file(conf), fmt), fmt, policy)

    def _match(self, name: str) -> Rule | None:
        found = self._matched.get(name, False)
        if found is False:
            found = next((rule for rule in self.rules if rule.pattern.search(name)), None)
            if len(self._matched) >= self.MATCH_CACHE_SIZE:
                self._matched = {}
            self._matched[name] = found
        return found

    def check(self, context: RequestContext, name: str, operation: str) -> bool:
        if not self.rules:
            return True
        if operation not in OPERATIONS:
            return False
        rule = self._match(str(name))
        if rule is None:
            return False
        allowed = rule.allowed[operation]
        if not allowed or "!" in allowed:
            return False
        if "@" in allowed:
            return True
        if self.rule_format == "policies":
            return self.policy is not None and self.policy.check_rule(context, allowed[0])
        return bool({*context.roles, *context.service_roles} & set(allowed))

    def for_context(self, context: RequestContext) -> Checker:
        return Checker(self, context)


class Checker:
    """One caller's view of the rules (one request)."""

    def __init__(self, rules: PropertyRules, context: RequestContext):
        self._rules = rules
        self._context = context
        self._memo: dict[tuple[str, str], bool] = {}

    def can(self, name: str, operation: str) -> bool:
        key = (name, operation)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = self._rules.check(self._context, name, operation)
        return found

    def require(self, name: str, operation: str) -> None:
        """403 ``Attribute '<name>' is reserved.``, as upstream answers every refusal."""
        if not self.can(name, operation):
            raise exceptions.ReservedProperty(f"Attribute '{name}' is reserved.")

    def readable(self, properties: dict) -> dict:
        """The properties the caller may read (the others are not shown, as if absent)."""
        return {key: value for key, value in properties.items() if self.can(key, "read")}

    def check_create(self, properties: dict) -> None:
        for key in properties:
            self.require(key, "create")


def find_file(conf: cfg.ConfigOpts) -> str:
    """The file as oslo.config finds it (a relative name is looked up beside the config files)."""
    path = conf.property_protection_file
    found = conf.find_file(path) if not os.path.isabs(path) else path
    return found or path
