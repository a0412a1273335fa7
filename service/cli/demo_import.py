"""``reviewrank import`` of the demo data set (data/womens-clothing-reviews.csv.zip),
locally or over gRPC to a running server, through the SubmitBatch path."""

from __future__ import annotations

import argparse

from reviewrank.service.cli.common import open_channel, settings_from
from reviewrank.service.cli.dataset import REVIEWS_ZIP


def import_demo(args: argparse.Namespace) -> int:
    from reviewrank.service.api import convert
    from reviewrank.service.api.validation import InputLimits
    from reviewrank.service.api.wire.batch_codec import EncodedBatch
    from reviewrank.service.cli.dataset import read_reviews
    from reviewrank.service.cli.importer import Progress, run_import
    from reviewrank.service.domain.values import Outcome
    from reviewrank.service.ops.logs import configure

    settings = settings_from(args)
    configure(settings.log_format, "warning")
    reviews = list(read_reviews(REVIEWS_ZIP))
    progress = None if args.quiet else Progress(len(reviews))
    if args.server:
        from reviewrank.v1 import feedback_pb2_grpc

        # The API token when one is configured (a server with one requires it), and TLS
        # with --tls or --ca-file, as for the other client commands.
        channel = open_channel(args)
        stub = feedback_pb2_grpc.FeedbackServiceStub(channel)
        outcome_of = {1: Outcome.APPLIED, 2: Outcome.DUPLICATE, 3: Outcome.SUPERSEDED}

        def submit_remote(request):  # type: ignore[no-untyped-def]
            response = stub.SubmitBatch(request, timeout=args.timeout)
            return [outcome_of[r.outcome] for r in response.results]

        report = run_import(reviews, submit_remote, args.batch_size, progress)
        channel.close()
    else:
        from reviewrank.service.compose import build_application

        app = build_application(settings)
        try:
            if args.if_empty and app.catalogue.seq > 0:
                print(
                    f"{settings.storage.display} already holds data (at sequence"
                    f" {app.catalogue.seq}):"
                    " not importing (if an import of the demo stopped part-way, `reviewrank"
                    " import` without --if-empty completes it: what is there is DUPLICATE)"
                )
                return 0

            limits = InputLimits.of(settings)

            def submit_local(request):  # type: ignore[no-untyped-def]
                events = convert.batch_events(EncodedBatch.of(request), limits)
                return [r.outcome for r in app.submit(events, timeout=None)]

            report = run_import(reviews, submit_local, args.batch_size, progress)
        finally:
            app.close()
    print(
        f"imported {report.reviews} reviews as {report.events} events in {report.seconds:.2f} s "
        f"({report.events / max(report.seconds, 1e-9):,.0f} events/s): "
        f"{report.applied} applied, {report.duplicate} duplicate, {report.superseded} superseded"
    )
    return 0
