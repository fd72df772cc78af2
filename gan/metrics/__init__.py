"""Quality metrics: FID / KID (Inception-v3 features), SWD, and the StyleGAN3 equivariance metrics.

`compute(names, G, dataset, num)` -> {name: value}; `run_metrics(...)` also says which metrics
were skipped and why. See `gan.metrics.runner.METRICS` for the names.
"""

from gan.metrics.runner import METRICS, MetricsReport, compute, run_metrics

__all__ = ["METRICS", "MetricsReport", "compute", "run_metrics"]
