"""Secrets that systemd hands over with LoadCredential=: files under $CREDENTIALS_DIRECTORY.

The stream key is read by config.py; the others are exported to the environment variables
the LLM and IRC clients read (export_credentials). Every value read is registered with
redact, so it is masked in every log line from then on.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from broadcaster.errors import BroadcasterError
from broadcaster.redact import register_secret

# Credentials read_credentials() looks for; each one is a file under $CREDENTIALS_DIRECTORY.
CREDENTIAL_NAMES = ("stream_key", "openai_api_key", "srt_passphrase", "twitch_oauth_token")


class CredentialError(BroadcasterError):
    """A credential file exists but cannot be read."""


def read_credential(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """The credential `name` systemd passed via LoadCredential=, or None.

    Trailing newlines are stripped and the value is registered with redact, so it is masked
    in every log line from then on.
    """
    env = os.environ if env is None else env
    directory = env.get("CREDENTIALS_DIRECTORY")
    if not directory or not name or "/" in name or name in (".", ".."):
        return None
    try:
        value = (Path(directory) / name).read_text(encoding="utf-8").rstrip("\r\n")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CredentialError(f"cannot read credential {name!r} from "
                              f"$CREDENTIALS_DIRECTORY: {exc.strerror or exc}") from None
    register_secret(value)
    return value or None


def read_credentials(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every credential in CREDENTIAL_NAMES that systemd passed in."""
    found = {}
    for name in CREDENTIAL_NAMES:
        value = read_credential(name, env)
        if value is not None:
            found[name] = value
    return found


# The environment variable each stage reads a credential from (stream_key is read by config).
CREDENTIAL_ENV = {"openai_api_key": "OPENAI_API_KEY", "twitch_oauth_token": "TWITCH_OAUTH_TOKEN"}


def export_credentials(env: MutableMapping[str, str] | None = None) -> list[str]:
    """Put systemd credentials where the stages look for them (OPENAI_API_KEY, ...).

    The unit hands openai_api_key and twitch_oauth_token through LoadCredential=, but the
    LLM and IRC clients read environment variables; a variable already set (EnvironmentFile=)
    wins. Returns the variables set. Values are registered with redact by read_credential.
    """
    env = os.environ if env is None else env
    exported = []
    for name, variable in CREDENTIAL_ENV.items():
        if env.get(variable):
            continue
        value = read_credential(name, env)
        if value:
            env[variable] = value
            exported.append(variable)
    return exported
