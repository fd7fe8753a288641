"""Run by test_strategy as each of two workers: prints `attn_core.strategy.worker_sum`."""

import json

from attn_core import strategy

dist = strategy.make_strategy("multi_worker")
index, count = strategy.worker_info(dist)
total = strategy.worker_sum(dist, [index + 1, 2.0**51 + index, 10])
strategy.barrier(dist)
print(json.dumps({"index": index, "count": count, "sum": total.tolist()}))
