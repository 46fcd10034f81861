# gunicorn server hook for Keystone, appended to its gunicorn.conf.py (roles/keystone's
# template and the tests' Keystone fixture include this one file).


def post_worker_init(worker):
    """Load Keystone's policy in each new worker before it accepts a request.

    Keystone (30.0.0) builds its oslo.policy enforcer on the first request that needs one and
    loads the rules inside that request, without a lock: a request checked by another thread
    meanwhile finds no rule for its action and is refused (403 on GET /v3/auth/tokens), which
    every service behind keystonemiddleware answers as 503 "The Keystone service is
    temporarily unavailable". Each worker that starts (boot, reload, a replaced worker) was
    open to it for its first burst of requests. gunicorn calls this hook after the worker
    loaded the application (Keystone's configuration is parsed) and before it serves.
    """
    from keystone.common.rbac_enforcer import policy

    # Not policy.get_enforcer(): that re-parses the configuration from sys.argv (gunicorn's),
    # which would drop the files the application was started with.
    enforcer = policy._ENFORCER._enforcer
    # As Keystone does inside a request: one summary warning later, not one per rule now.
    enforcer.suppress_deprecation_warnings = True
    enforcer.load_rules()
    worker.log.info("keystone policy loaded before serving: %d rules", len(enforcer.rules))
