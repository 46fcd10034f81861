"""Credentials in text masked: ``mask_secrets`` (log lines, error bodies, task messages).

Location URLs may carry store credentials (``s3://AKIA...:secret@host/...``,
``swift+https://user:key@...``, presigned query strings). This module imports nothing but
``re``, so every layer may use it: the domain's import workers mask a failed task's message
without importing the logging and WSGI plumbing of ``common.request_log``.
"""

from __future__ import annotations

import re

# scheme://userinfo@ -> scheme://***@ (userinfo up to the last "@" of the URL: an S3 secret
# key may hold "/" and "+").
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^\s'\"<>]*@")
# ?name=value with a name that carries a credential (AWS presigned URLs, Swift temp URLs, tokens).
_QUERY_SECRET = re.compile(
    r"(?i)([?&;](?:x-amz-(?:signature|credential|security-token)|signature|sig|temp_url_sig|token|"
    r"auth_token|password|passwd|pass|secret|secret_key|access_key|api_key|apikey|awsaccesskeyid|key)=)"
    r"[^&;\s'\"<>#]*"
)
_MASK = "***"


def mask_secrets(text: str) -> str:
    """``text`` with the credentials of any URL in it replaced by ``***``."""
    if "@" in text:
        text = _URL_USERINFO.sub(r"\1" + _MASK + "@", text)
    if "=" in text:
        text = _QUERY_SECRET.sub(r"\1" + _MASK, text)
    return text
