"""Who may do what: oslo.policy with Glance's rule names and defaults.

An operator's existing ``policy.yaml`` (``[oslo_policy] policy_file``) keeps working because
the rule names, the defaults and the target keys are Glance's: for an image, ``project_id``
and ``owner`` are the image's owner, ``member_id`` is the caller's project when the caller
reached a shared image it does not own (Glance's ``image.member``), ``visibility`` the
image's visibility. Whether a refusal is a 403 or a 404 is the caller's decision.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from oslo_config import cfg
from oslo_policy import _checks
from oslo_policy import policy as oslo_policy

from glance_service import exceptions
from glance_service.context import RequestContext
from glance_service.images import metadef_rules

ADMIN = "rule:context_is_admin"
DEFAULT = "rule:default"
SERVICE = "rule:service_api"
PROJECT_MEMBER = "role:member and project_id:%(project_id)s"
PROJECT_READER = "role:reader and project_id:%(project_id)s"
IMAGE_MEMBER_CHECK = "project_id:%(member_id)s"
_VISIBLE = (
    f"project_id:%(project_id)s or {IMAGE_MEMBER_CHECK} or 'community':%(visibility)s "
    "or 'public':%(visibility)s or 'shared':%(visibility)s"
)
ADMIN_OR_PROJECT_MEMBER = f"{ADMIN} or ({PROJECT_MEMBER})"
ADMIN_OR_PROJECT_READER = f"{ADMIN} or ({PROJECT_READER})"
ADMIN_OR_PROJECT_READER_GET_IMAGE = f"{ADMIN} or (role:reader and ({_VISIBLE}))"
ADMIN_OR_PROJECT_MEMBER_DOWNLOAD_IMAGE = f"{ADMIN} or (role:member and ({_VISIBLE}))"
ADMIN_OR_PROJECT_MEMBER_CREATE_IMAGE = f"{ADMIN} or ({PROJECT_MEMBER} and project_id:%(owner)s)"
ADMIN_OR_SHARED_MEMBER = f"{ADMIN} or (role:member and {IMAGE_MEMBER_CHECK})"
ADMIN_OR_PROJECT_READER_OR_SHARED_MEMBER = (
    f"{ADMIN} or role:reader and (project_id:%(project_id)s or {IMAGE_MEMBER_CHECK})"
)
SERVICE_OR_PROJECT_MEMBER = f"{SERVICE} or ({PROJECT_MEMBER} and project_id:%(owner)s)"
ADMIN_OR_SERVICE = f"{ADMIN} or {SERVICE}"

_RULES: list[tuple[str, str, str]] = [
    ("context_is_admin", "role:admin", "Defines the rule for the is_admin:True check."),
    ("default", "", "Default rule for policies not set in the policy file."),
    ("service_api", "role:service or role:admin", "Default rule for the service-to-service API."),
    ("add_image", ADMIN_OR_PROJECT_MEMBER_CREATE_IMAGE, "Create new image"),
    ("delete_image", ADMIN_OR_PROJECT_MEMBER, "Deletes the image"),
    ("get_image", ADMIN_OR_PROJECT_READER_GET_IMAGE, "Get specified image"),
    ("get_images", ADMIN_OR_PROJECT_READER, "Get all available images"),
    ("modify_image", ADMIN_OR_PROJECT_MEMBER, "Updates given image"),
    ("publicize_image", ADMIN, "Publicize given image"),
    ("communitize_image", ADMIN_OR_PROJECT_MEMBER, "Communitize given image"),
    ("download_image", ADMIN_OR_PROJECT_MEMBER_DOWNLOAD_IMAGE, "Downloads given image"),
    ("download_from_store", ADMIN_OR_PROJECT_MEMBER_DOWNLOAD_IMAGE, "Downloads given image from a store"),
    ("upload_image", ADMIN_OR_PROJECT_MEMBER, "Uploads data to specified image"),
    ("delete_image_location", ADMIN, "Deletes the location of given image"),
    ("get_image_location", ADMIN_OR_PROJECT_READER, "Reads the location of the image"),
    ("set_image_location", ADMIN_OR_PROJECT_MEMBER, "Sets location URI to given image"),
    ("add_image_location", SERVICE_OR_PROJECT_MEMBER, "Add location URI to given image"),
    ("fetch_image_location", SERVICE, "Show all locations associated to given image"),
    ("add_member", ADMIN_OR_PROJECT_MEMBER, "Create image member"),
    ("delete_member", ADMIN_OR_PROJECT_MEMBER, "Delete image member"),
    ("get_member", ADMIN_OR_PROJECT_READER_OR_SHARED_MEMBER, "Show image member details"),
    ("get_members", ADMIN_OR_PROJECT_READER_OR_SHARED_MEMBER, "List image members"),
    ("modify_member", ADMIN_OR_SHARED_MEMBER, "Update image member"),
    ("manage_image_cache", ADMIN, "Manage image cache"),
    ("deactivate", ADMIN_OR_PROJECT_MEMBER, "Deactivate image"),
    ("reactivate", ADMIN_OR_PROJECT_MEMBER, "Reactivate image"),
    ("copy_image", ADMIN, "Copy existing image to other stores"),
    ("cache_image", ADMIN, "Queue image for caching"),
    ("cache_list", ADMIN, "List cache related data"),
    ("cache_delete", ADMIN, "Delete image(s) from cache and/or queue"),
    ("cache_clean", ADMIN, "Clean the cache"),
    ("cache_prune", ADMIN, "Prune the cache"),
    ("list_cached_nodes", ADMIN, "List the nodes an image is cached on"),
    ("stores_info_detail", ADMIN_OR_SERVICE, "Expose store specific information"),
    ("get_task", DEFAULT, "Get an image task"),
    ("get_tasks", DEFAULT, "List tasks for all images"),
    ("add_task", DEFAULT, "Create an image task"),
    ("modify_task", DEFAULT, "This policy is not used"),
    ("tasks_api_access", ADMIN, "Access the tasks API"),
]


def list_rules() -> list[oslo_policy.RuleDefault]:
    """The default rules (also what oslopolicy-sample-generator would print)."""
    image_rules = [
        oslo_policy.RuleDefault(name=name, check_str=check, description=desc, scope_types=["project"])
        for name, check, desc in _RULES
    ]
    return image_rules + metadef_rules.list_rules()


def image_target(image: dict | None, ctx: RequestContext) -> dict:
    """The policy target for ``image`` (or for a call without an image: the caller's project)."""
    if image is None:
        return {"project_id": ctx.project_id}
    owner = image.get("owner")
    member = ctx.project_id if image.get("visibility") == "shared" and ctx.project_id != owner else None
    target = dict(image.get("properties") or {})
    target.update(
        {
            "id": image.get("id"),
            "project_id": owner,
            "owner": owner,
            "member_id": member,
            "visibility": image.get("visibility"),
            "status": image.get("status"),
            "name": image.get("name"),
            "protected": image.get("protected"),
        }
    )
    return target


class _ThrottledEnforcer(oslo_policy.Enforcer):
    """oslo.policy looks for the policy file on disk at every check (a stat per config dir even
    when there is none): 72% of a 1000-image list went there. Look at most every few seconds;
    an operator's edit still takes effect without a restart."""

    RECHECK_SECONDS = 5.0
    _next_check = 0.0
    # Bumped whenever rules are (re)loaded or changed: memoised decisions of older rules are void.
    generation = 0

    def load_rules(self, force_reload: bool = False) -> None:
        now = time.monotonic()
        if not force_reload and self.rules and now < self._next_check:
            return
        self._next_check = now + self.RECHECK_SECONDS
        super().load_rules(force_reload)

    def set_rules(self, *args, **kwargs) -> None:
        self.generation += 1
        super().set_rules(*args, **kwargs)

    def clear(self) -> None:
        self.generation += 1
        super().clear()


class Enforcer:
    """One per worker process; the policy file is re-read within seconds of a change."""

    def __init__(self, conf: cfg.ConfigOpts, use_conf: bool = True):
        self._enforcer = _ThrottledEnforcer(conf, use_conf=use_conf)
        self._memo: dict[tuple, bool] = {}
        self._keys: dict[str, tuple[str, ...] | None] = {}
        self._memo_generation = -1
        self._enforcer.register_defaults(list_rules())
        if not use_conf:
            # oslo.policy applies registered defaults only while loading the policy file: without
            # one every rule would be missing, and so refused.
            self._enforcer.set_rules(
                {rule.name: rule.check for rule in list_rules()}, overwrite=True, use_conf=False
            )

    MEMO_SIZE = 10000

    def check(self, ctx: RequestContext, rule: str, image: dict | None = None) -> bool:
        """Decisions are memoised per process on the caller's credentials and the target keys
        the rule reads (like ``image_filter``, across requests): oslo.policy's ~150 us a check
        was the largest piece of CPU left in a GET of one image. Rules read from the policy
        file again (every few seconds) void the memo."""
        return self._decide(ctx, rule, image_target(image, ctx))

    def _decide(self, ctx: RequestContext, rule: str, target: dict) -> bool:
        """``rule`` on ``target``, memoised (see ``check``)."""
        creds = ctx.policy_credentials()
        self._enforcer.load_rules()
        generation = self._enforcer.generation
        if generation != self._memo_generation:
            self._memo, self._keys, self._memo_generation = {}, {}, generation
        keys = self._keys.get(rule, False)
        if keys is False:
            keys = self._keys[rule] = _target_keys(self._enforcer, rule)
        if keys is None:
            return bool(self._enforcer.enforce(rule, target, creds))
        key = (rule, _creds_key(creds), *(str(target.get(k)) for k in keys))
        found = self._memo.get(key)
        if found is None:
            if len(self._memo) >= self.MEMO_SIZE:
                self._memo = {}
            found = self._memo[key] = bool(self._enforcer.enforce(rule, target, creds))
        return found

    def image_filter(self, ctx: RequestContext, rule: str) -> Callable[[dict], bool]:
        """``check(ctx, rule, image)`` for many images of one request (listing).

        oslo.policy costs ~150 us a check (it inspects every check's signature each time), so a
        1000-image page spent most of its time here. Decisions are memoised on the target keys
        the rule actually reads (owner, visibility, ...); a rule with checks whose inputs cannot
        be told (e.g. an http check from an operator's policy file) is evaluated every time."""
        keys = _target_keys(self._enforcer, rule)
        if keys is None:
            return lambda image: self.check(ctx, rule, image)
        memo: dict[tuple, bool] = {}

        def allowed(image: dict) -> bool:
            target = image_target(image, ctx)
            key = tuple(str(target.get(k)) for k in keys)
            found = memo.get(key)
            if found is None:
                found = memo[key] = bool(self._enforcer.enforce(rule, target, ctx.policy_credentials()))
            return found

        return allowed

    def check_target(self, ctx: RequestContext, rule: str, target: dict) -> bool:
        """Memoised as ``check`` (add_image on every create: oslo.policy's signature
        inspection was ~9 ``getfullargspec`` calls per create)."""
        return self._decide(ctx, rule, target)

    def check_rule(self, ctx: RequestContext, name: str) -> bool:
        """``rule:<name>`` of the policy file, on an empty target: property protections in the
        ``policies`` format (upstream's ``<section>:<operation>`` rules). An undefined name is
        refused."""
        self._enforcer.load_rules()
        check = oslo_policy.RuleCheck("rule", name)
        return bool(self._enforcer.enforce(check, {}, ctx.policy_credentials()))

    def enforce(self, ctx: RequestContext, rule: str, image: dict | None = None) -> None:
        if not self.check(ctx, rule, image):
            raise exceptions.Forbidden(f"You are not authorized to complete {rule} action.")

    def enforce_target(self, ctx: RequestContext, rule: str, target: dict) -> None:
        if not self.check_target(ctx, rule, target):
            raise exceptions.Forbidden(f"You are not authorized to complete {rule} action.")

    def enforce_image(self, ctx: RequestContext, rule: str, image: dict) -> None:
        """Enforce ``rule`` on an existing image: 404 when the caller may not even see it
        (Glance's ImageAPIPolicy), 403 otherwise."""
        if self.check(ctx, rule, image):
            return
        if rule == "get_image" or not self.check(ctx, "get_image", image):
            raise exceptions.ImageNotFound(f"No image found with ID {image.get('id')}")
        raise exceptions.Forbidden(f"You are not authorized to complete {rule} action.")

    def enforce_visibility(self, ctx: RequestContext, visibility: str | None, target: dict) -> None:
        if visibility == "public":
            self.enforce_target(ctx, "publicize_image", target)
        elif visibility == "community":
            self.enforce_target(ctx, "communitize_image", target)


def _creds_key(creds: dict) -> tuple:
    return tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in sorted(creds.items()))


_TARGET_REF = re.compile(r"%\((\w+)\)s")


def _target_keys(enforcer: oslo_policy.Enforcer, rule: str) -> tuple[str, ...] | None:
    """The target keys ``rule`` reads, sorted; None when a check's inputs cannot be told."""
    enforcer.load_rules()
    keys: set[str] = set()
    seen: set[str] = set()
    stack = [enforcer.rules.get(rule)]
    while stack:
        check = stack.pop()
        if check is None or isinstance(check, (_checks.TrueCheck, _checks.FalseCheck)):
            continue
        if isinstance(check, (_checks.AndCheck, _checks.OrCheck)):
            stack.extend(check.rules)
        elif isinstance(check, _checks.NotCheck):
            stack.append(check.rule)
        elif isinstance(check, _checks.RuleCheck):
            if check.match not in seen:
                seen.add(check.match)
                stack.append(enforcer.rules.get(check.match))
        elif type(check) in (_checks.RoleCheck, _checks.GenericCheck):
            keys.update(_TARGET_REF.findall(check.match))
            if type(check) is _checks.GenericCheck and "%(" in check.kind:
                return None
        else:
            return None
    return tuple(sorted(keys))
