"""Keep secrets out of the report's Environment section (and the JSON results).

Why: pytest-metadata copies CI variables into the Environment table (``GIT_URL`` and
``CIRCLE_REPOSITORY_URL`` may carry ``https://user:token@host``; ``GITLAB_USER_EMAIL``,
``CI_REGISTRY_USER``), ``--metadata KEY VALUE`` adds anything, and a fixture might record a fact it
should not. A readiness report is mailed to instructors and pasted into chats, so it must never
carry a token, a password, a private key or a kubeconfig. pytest-html's own
``environment_table_redact_list`` only applies to keys known at session start and needs each project
to list them; this covers every value, whenever it was added.

Pure functions; ``redact_in_place`` mutates the dict because pytest-html holds a reference to it.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping

REDACTED = "[redacted]"

# Keys whose value is a secret or personal data whatever it looks like.
_SECRET_KEY = re.compile(
    r"(PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|API_?KEY|PRIVATE|CREDENTIAL|AUTH|COOKIE|SESSION|EMAIL"
    r"|KUBECONFIG|(^|_)KEY$|_PASS$|_PWD$)",
    re.IGNORECASE,
)
# scheme://user:password@host or scheme://token@host -> keep scheme and host only. Up to the LAST '@' of the
# word: a password may hold '/', '@' or ':' (DOCKER_HOST=tcp://admin:p/a@ss@host:2376); removing a little too
# much of an odd URL is better than printing part of a password.
_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)\S*@")
# Characters that drive a terminal or hide text rather than print: C0 controls except newline and tab (ESC
# starts ANSI sequences that recolour, move the cursor or retitle the window; CR overwrites the line), DEL, C1
# controls, and the Unicode bidirectional overrides that show text in another order than it runs.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# Text that is (part of) a kubeconfig, a key, a certificate or a bearer token.
_SECRET_TEXT = re.compile(
    r"-----BEGIN [A-Z ]*(PRIVATE KEY|CERTIFICATE)-----"
    r"|client-key-data|client-certificate-data|certificate-authority-data"
    r"|^\s*(token|password|client-key|id-token|refresh-token)\s*:"
    r"|\bkind:\s*Config\b"
    r"|\bBearer\s+\S+",
    re.IGNORECASE | re.MULTILINE,
)


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(str(key)))


def scrub(value: object) -> object:
    """``value`` with credentials in URLs removed; a value that looks like key material is replaced."""
    if isinstance(value, dict):
        return {k: (REDACTED if is_secret_key(k) else scrub(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    if not isinstance(value, str):
        return value
    if _SECRET_TEXT.search(value):
        return f"{REDACTED} (looked like a kubeconfig, key or token)"
    return escape_controls(_URL_USERINFO.sub(r"\g<scheme>***@", value))


def escape_controls(text: str) -> str:
    """``text`` with terminal control characters and ANSI escapes shown as ``\\x1b``-style escapes.

    WHY: messages quote tool output (docker, kind, nvidia-smi errors); an ESC sequence there would recolour or
    rewrite the terminal, or hide text in the report, instead of being read."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                        else f"\\u{ord(m.group()):04x}", text)


def redact_in_place(metadata: MutableMapping[str, object]) -> list[str]:
    """Redact ``metadata`` (the Environment table) in place; returns the keys that were changed."""
    changed = []
    for key in list(metadata):
        value = metadata[key]
        new = REDACTED if is_secret_key(key) else scrub(value)
        if new != value:
            metadata[key] = new
            changed.append(key)
    return changed
