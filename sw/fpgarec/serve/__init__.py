"""The HTTP recommendation service (``fpgarec serve``) and its load test (``fpgarec loadtest``).

- :mod:`fpgarec.serve.config`: :class:`ServeConfig` and :class:`LoadTestConfig`, the two flows' settings
- :mod:`fpgarec.serve.history`: the known users' histories (``.npz`` file or a data folder)
- :mod:`fpgarec.serve.batching`: concurrent requests batched dynamically into accelerator batches
- :mod:`fpgarec.serve.metrics`: Prometheus text exposition (requests, errors, latency, batches)
- :mod:`fpgarec.serve.app`: the Starlette application and its uvicorn server
- :mod:`fpgarec.serve.loadtest`: a loopback load test against a server in a child process

starlette and uvicorn are imported by :mod:`~fpgarec.serve.app` only (and loaded only when a
server is built), never by :mod:`fpgarec.runtime`.
"""
