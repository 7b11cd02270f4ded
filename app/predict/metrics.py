"""The model cache as Prometheus sees it, read at each scrape: this API process's cached bytes, the loads it
did, and the requests waiting right now for another request's load of the same model."""

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from app.predict.model_cache import ModelCache


class ModelCacheCollector(Collector):
    def __init__(self, cache: ModelCache) -> None:
        self.cache = cache

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        yield GaugeMetricFamily(
            "cifar_model_cache_bytes", "Bytes of model files loaded for /predict (this API process).",
            value=self.cache.cached_bytes,
        )  # fmt: skip
        yield CounterMetricFamily(
            "cifar_model_loads", "Models loaded for /predict, misses of the cache (this API process).",
            value=self.cache.loads,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "cifar_model_load_waiters", "Requests waiting for another request's load of the same model.",
            value=self.cache.waiting,
        )  # fmt: skip
