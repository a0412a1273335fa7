"""The service's own metrics read at scrape time: gauges and counters from the counters
the application publishes (Application.counters) and the servers' health. Nothing is
paid between scrapes (service/ops/metrics.py registers them)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from reviewrank.service import __version__
from reviewrank.service.app.status import Counters


class ServiceCollector(Collector):
    """Reads the application's counters at each scrape."""

    def __init__(
        self, counters: Callable[[], Counters], health: Callable[[], dict[str, int]] | None
    ) -> None:
        self._counters = counters
        self._health = health

    def describe(self) -> list[Metric]:
        return []  # read at scrape time: no name clash to check at registration

    def collect(self) -> Iterator[Metric]:
        now = self._counters()
        info = GaugeMetricFamily(
            "reviewrank_build_info",
            "The reviewrank version serving (always 1).",
            labels=["version"],
        )
        info.add_metric([__version__], 1)
        yield info
        events = CounterMetricFamily(
            "reviewrank_events",
            "Events recorded since start, by outcome: applied (changes rankings), duplicate "
            "(event id seen before: nothing changes), superseded (the user has a newer vote).",
            labels=["outcome"],
        )
        for outcome, count in now.outcomes.items():
            events.add_metric([outcome], count)
        yield events
        kinds = CounterMetricFamily(
            "reviewrank_events_by_kind",
            "Events recorded since start (applied or superseded) by kind (rating, like, "
            'share, comment, poll_vote) and channel ("" for none; beyond the first 20 channels'
            " seen, other).",
            labels=["kind", "channel"],
        )
        for (kind, channel), count in sorted(now.kinds.items()):
            kinds.add_metric([kind, channel], count)
        yield kinds
        yield CounterMetricFamily(
            "reviewrank_erasures",
            "ForgetUser erasures committed since start.",
            value=now.erasures,
        )
        transactions = CounterMetricFamily(
            "reviewrank_write_transactions",
            "Write transactions since start, by result (a failed one wrote nothing).",
            labels=["result"],
        )
        transactions.add_metric(["committed"], now.transactions)
        transactions.add_metric(["failed"], now.failed_transactions)
        yield transactions
        yield CounterMetricFamily(
            "reviewrank_writes_expired",
            "Write calls dropped unapplied because their deadline passed in the queue.",
            value=now.writes_expired,
        )
        yield GaugeMetricFamily(
            "reviewrank_writer_queue_depth",
            "Write calls waiting for the writer thread.",
            value=now.queue_depth,
        )
        yield GaugeMetricFamily(
            "reviewrank_writer_queue_capacity",
            "Write calls the queue holds before refusing (RESOURCE_EXHAUSTED).",
            value=now.queue_capacity,
        )
        yield GaugeMetricFamily("reviewrank_products", "Products in memory.", value=now.products)
        yield GaugeMetricFamily(
            "reviewrank_sequence",
            "Sequence number of the last event applied in memory.",
            value=now.seq,
        )
        lag = GaugeMetricFamily(
            "reviewrank_change_feed_lag_events",
            "Events committed but not yet applied in this process's memory, per feed. "
            'feed="local": this process\'s own commits, applied before they are '
            "acknowledged, so always 0 (there is no multi-process change feed yet).",
            labels=["feed"],
        )
        for feed, behind in now.change_feed_lags.items():
            lag.add_metric([feed], behind)
        yield lag
        yield GaugeMetricFamily(
            "reviewrank_weights_version", "The weights version in force.", value=now.weights_version
        )
        # (No weights or prior values here: they are the admin service's (GetWeights,
        # GetStatus), and a scrape needs no token.)
        yield GaugeMetricFamily(
            "reviewrank_poll_votes",
            "Poll votes in force when the poll strengths were last fitted.",
            value=now.poll_votes,
        )
        yield GaugeMetricFamily(
            "reviewrank_poll_fit_seconds",
            "What the last fit of the poll strengths took: reading every poll vote and MM.",
            value=now.poll_fit_seconds,
        )
        yield GaugeMetricFamily(
            "reviewrank_poll_fit_pending",
            "1 while poll votes changed since the poll strengths in force were fitted.",
            value=1 if now.poll_fit_pending else 0,
        )
        damped = GaugeMetricFamily(
            "reviewrank_damped_votes",
            "Votes the manipulation defences weigh less than 1 (in a burst), by kind.",
            labels=["kind"],
        )
        for kind in ("rating", "like", "dislike"):
            damped.add_metric([kind], now.damped_votes.get(kind, 0))
        yield damped
        yield GaugeMetricFamily(
            "reviewrank_storage_ok",
            "1 while writes commit, 0 from a storage fault until a test write commits again.",
            value=1 if now.storage_ok else 0,
        )
        if self._health is not None:
            serving = GaugeMetricFamily(
                "reviewrank_serving",
                'Health status per service, 1 = SERVING (service="" is the whole server).',
                labels=["service"],
            )
            for service, status in sorted(self._health().items()):
                serving.add_metric([service], 1 if status == _SERVING else 0)
            yield serving


_SERVING = 1  # grpc.health.v1.HealthCheckResponse.SERVING
