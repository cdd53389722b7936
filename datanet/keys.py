"""Private keys for signing: from a key file (0x-hex, or an encrypted JSON keystore whose password
is in ``DATANET_KEY_PASSWORD``) or from ``DATANET_PRIVATE_KEY``. Keys are never printed or
written anywhere; error messages name the source, never the value.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from datanet.errors import SignatureError

__all__ = ["KEY_ENV", "PASSWORD_ENV", "load_private_key"]

KEY_ENV = "DATANET_PRIVATE_KEY"
PASSWORD_ENV = "DATANET_KEY_PASSWORD"


def load_private_key(key_file: Path | None) -> bytes:
    """The signing key from ``key_file`` or ``$DATANET_PRIVATE_KEY``."""
    from eth_account import Account

    if key_file is not None:
        try:
            raw = key_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SignatureError(f"--key-file {key_file}: cannot be read ({exc})") from None
        if raw.startswith("{"):
            password = os.environ.get(PASSWORD_ENV)
            if password is None:
                raise SignatureError(f"--key-file {key_file} is an encrypted keystore; set "
                                     f"{PASSWORD_ENV} to its password")
            try:
                return bytes(Account.decrypt(json.loads(raw), password))
            except (ValueError, KeyError) as exc:
                raise SignatureError(f"--key-file {key_file}: cannot decrypt ({exc})") from None
        source = f"--key-file {key_file}"
    else:
        raw = os.environ.get(KEY_ENV, "").strip()
        if not raw:
            raise SignatureError(f"no signing key: pass --key-file FILE or set {KEY_ENV}")
        source = KEY_ENV
    try:
        key = bytes.fromhex(raw.removeprefix("0x"))
    except ValueError:
        key = b""
    if len(key) != 32:
        raise SignatureError(f"{source} must hold a 32-byte private key as 0x-hex "
                             "(or an encrypted JSON keystore)")
    return key
