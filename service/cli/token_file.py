"""The admin token file `make serve` hands the server: made once, random, owner-only.

Admin RPCs and erasure (ForgetUser) need the admin token, so a server with none cannot
erase anyone. So that `make serve` still works out of the box, it runs this module first:

    python -m service.cli.token_file [PATH]      # default: data/admin-token

which creates PATH with a random token (mode 0600) unless it exists, and leaves an
existing file alone (its token stays valid across restarts). The client commands read
the same file when no token is configured (service/cli/main.py, client_token).
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path

from reviewrank.service.app.settings import DATA_DIR

DEFAULT_ADMIN_TOKEN_FILE = DATA_DIR / "admin-token"
# 32 random bytes: 43 URL-safe characters, no whitespace or quoting to get wrong in a header.
TOKEN_BYTES = 32


def ensure_token_file(path: Path) -> bool:
    """Creates ``path`` holding a new random token, owner-only; True if it was created,
    False if it already existed (then it is not read, changed or re-permissioned)."""
    try:
        # O_EXCL: never overwrite, even if another process creates it meanwhile; the mode
        # is set at creation, so the token is never readable by others, not even briefly.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(secrets.token_urlsafe(TOKEN_BYTES) + "\n")
        file.flush()
        os.fsync(file.fileno())
    os.chmod(path, 0o600)  # exactly: a strict umask (e.g. 077 -> fine, 277 -> 0400) may differ
    return True


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    path = Path(args[0]) if args else DEFAULT_ADMIN_TOKEN_FILE
    try:
        created = ensure_token_file(path)
    except OSError as exc:
        print(f"reviewrank: cannot create {path}: {exc.strerror}", file=sys.stderr)
        return 1
    if created:
        print(f"created the admin token file {path} (admin commands and forget read it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
