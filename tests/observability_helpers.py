"""Scraping a real server's Prometheus endpoint, for the observability tests."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Client

RANK = {
    "grpc_type": "unary",
    "grpc_service": "reviewrank.v1.RankingService",
    "grpc_method": "Rank",
}


def scrape_text(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode("utf-8"))


class Samples:
    """One scrape: every sample by name and labels."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                self.values[key] = sample.value

    def __call__(self, name: str, **labels: str) -> float:
        """The sample's value; KeyError when the server does not export it."""
        return self.values[(name, tuple(sorted(labels.items())))]

    def series(self, name: str) -> dict[tuple[tuple[str, str], ...], float]:
        return {labels: v for (n, labels), v in self.values.items() if n == name}


def scrape(client: Client) -> Samples:
    port = client.server.metrics_port
    assert port is not None, "the server serves no metrics"
    return Samples(scrape_text(port))
