"""``reviewrank forget USER_ID --yes``: erase a user (FeedbackService.ForgetUser).

Erasure cannot be undone, so the command does nothing without ``--yes``. It sends the
admin token, which ForgetUser needs unless the server runs with ``open_erasure``
(--token, else REVIEWRANK_ADMIN_TOKEN or _FILE, else data/admin-token from `make serve`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from reviewrank.service.cli.common import call
from reviewrank.v1 import feedback_pb2, feedback_pb2_grpc


def cmd_forget(args: argparse.Namespace) -> int:
    if not args.yes:
        print(
            f"reviewrank: forget erases every vote of {args.user_id!r} and their events, "
            "irreversibly: add --yes to do it",
            file=sys.stderr,
        )
        return 2
    request = feedback_pb2.ForgetUserRequest(user_id=args.user_id)
    response = call(args, feedback_pb2_grpc.FeedbackServiceStub, "ForgetUser", request, True)
    if isinstance(response, int):
        return response
    if not response.events_erased:
        print(f"nothing to erase: no event of {args.user_id!r}")
        return 0
    print(
        f"erased {args.user_id!r}: {response.ratings_removed} star votes, "
        f"{response.likes_removed} like votes, {response.shares_removed} shares, "
        f"{response.comments_removed} comments and {response.poll_votes_removed} poll votes"
        " removed, "
        f"{response.events_erased} events erased (seq {response.seq})"
    )
    return 0


def register(commands: Any, client_options: Callable[[argparse.ArgumentParser], None]) -> None:
    forget = commands.add_parser(
        "forget", help="erase a user's votes and events, irreversibly (needs the admin token)"
    )
    forget.add_argument("user_id", help="the user whose votes and events are erased")
    forget.add_argument("--yes", action="store_true", help="confirm: erasure cannot be undone")
    client_options(forget)
    forget.set_defaults(handler=cmd_forget)
