"""``fpgarec serve`` and ``fpgarec loadtest`` from the command line (loopback, small)."""

from __future__ import annotations

import json
import subprocess


def _run(venv_bin, *args, timeout=120):
    return subprocess.run([str(venv_bin / "fpgarec"), *args], capture_output=True, text=True, timeout=timeout)


def test_loadtest_small_run_prints_one_json_line(venv_bin, demo_bundle, history_file):
    proc = _run(venv_bin, "loadtest", str(demo_bundle), "--history", str(history_file), "--requests", "400",
                "--concurrency", "8", "--max-seconds", "60")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("requests", "lost", "failed", "rps", "p50_ms", "p99_ms"):
        assert key in result
    assert result["requests"] == 400 and result["lost"] == 0 and result["failed"] == 0
    assert result["wrong"] == 0 and result["errors_5xx"] == 0 and result["unsent"] == 0
    assert result["batches"] >= 1 and result["server_errors"] == 0


def test_user_errors_are_one_line_exit_2(venv_bin, demo_bundle, tmp_path):
    cases = [
        ("serve", str(tmp_path / "nobundle"), "--port", "0"),
        ("serve", str(demo_bundle), "--history", str(tmp_path / "none.npz"), "--port", "0"),
        ("serve", str(demo_bundle), "--backend", "pynq", "--port", "0"),
        ("serve", str(demo_bundle), "--max-batch", "0"),
        ("loadtest", str(demo_bundle), "--host", "0.0.0.0"),
    ]
    for args in cases:
        proc = _run(venv_bin, *args, timeout=60)
        assert proc.returncode == 2, (args, proc.stderr[-1000:])
        lines = [line for line in proc.stderr.splitlines() if line.startswith("fpgarec: error")]
        assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr


def test_save_history_writes_a_numpy_file(venv_bin, demo_bundle, history_file, tmp_path):
    from fpgarec.runtime.sampler import History

    out = tmp_path / "copy.npz"
    proc = _run(venv_bin, "serve", str(demo_bundle), "--history", str(history_file), "--save-history", str(out))
    assert proc.returncode == 0, proc.stderr
    assert History.load(out).n_users == History.load(history_file).n_users


def test_client_counts_unanswered_requests_as_lost():
    """A server that accepts and never answers: every request is lost after the timeout."""
    import asyncio
    import socket
    import threading

    from fpgarec.serve.config import LoadTestConfig, ServeConfig
    from fpgarec.serve.loadtest import _Client

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held = []

    def accept():
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    cfg = LoadTestConfig(serve=ServeConfig(bundle="unused"), requests=4, concurrency=2, request_timeout_s=0.3)
    client = _Client("127.0.0.1", listener.getsockname()[1], [b"POST /recommend HTTP/1.1\r\n\r\n"] * 4, None, cfg)
    asyncio.run(client.run())
    listener.close()
    for conn in held:
        conn.close()
    assert client.lost == 4 and not (client.status > 0).any()
