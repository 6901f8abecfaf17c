"""Teacher-call throughput: distillc's openai backend against plain AsyncOpenAI loops.

N requests go to a loopback OpenAI-compatible server (its own process) that answers after a fixed
latency. For each concurrency, three clients run, each in a fresh process so CPU and peak memory are
its own: distillc's ``LLMClient`` (cache, ledger in a real DuckDB file, retries and adaptive
concurrency all on), ``AsyncOpenAI`` + a semaphore with the SDK's default httpx transport, and the
same with its aiohttp transport, and a bare aiohttp loop (no SDK: the ceiling this machine allows
right now, which calibrates the others when other work shares the cores). Printed per run: wall time, efficiency
(N x latency / concurrency / wall: 1.0 means the client never made the server wait), CPU seconds per
1000 calls and peak RSS.

    .venv/bin/python bench/teacher_throughput.py                    # N=5000, concurrency 64 and 256
    .venv/bin/python bench/teacher_throughput.py --n 1000 --clients distillc
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = ("distillc", "openai-httpx", "openai-aiohttp", "aiohttp-raw")
MODEL = "gpt-4o-mini"


def _prompt(i: int) -> str:
    return f"Write a Python function number {i} that returns its argument plus {i}."


# -- one measured run (in a child process; imports and set-up are outside the timed region) ------
def run_distillc(url: str, n: int, concurrency: int) -> dict[str, float]:
    from compiler.llm.client import LLMClient
    from compiler.llm.types import LLMRequest
    from compiler.recipe.schema import ModelConfig
    from compiler.store.db import Store

    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "bench.duckdb") as store:
        config = ModelConfig(model=MODEL, backend="openai", base_url=url, max_concurrency=concurrency,
                             timeout_s=60)
        client = LLMClient(config, store=store, role="teacher")
        requests = [LLMRequest.chat([{"role": "user", "content": _prompt(i)}], max_tokens=128,
                                    served_rows=(f"row{i}",)) for i in range(n)]
        with _Timer() as t:
            results = client.generate(requests, stage="bench", stage_fp="bench", progress=False)
        assert all(r.ok for r in results) and client.calls_sent == n, "bench run lost requests"
    return t.figures


async def run_plain(url: str, n: int, concurrency: int, aiohttp_transport: bool) -> dict[str, float]:
    import openai

    http_client = openai.DefaultAioHttpClient() if aiohttp_transport else None
    client = openai.AsyncOpenAI(base_url=url, api_key="sk-bench", http_client=http_client)
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            r = await client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": _prompt(i)}], max_tokens=128)
            assert r.choices[0].message.content

    with _Timer() as t:
        await asyncio.gather(*(one(i) for i in range(n)))
    await client.close()
    return t.figures


async def run_raw(url: str, n: int, concurrency: int) -> dict[str, float]:
    import aiohttp

    sem = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def one(i: int) -> None:
            async with sem:
                body = {"model": MODEL, "messages": [{"role": "user", "content": _prompt(i)}], "max_tokens": 128}
                async with session.post(url + "/chat/completions", json=body) as resp:
                    assert (await resp.json())["choices"][0]["message"]["content"]

        with _Timer() as t:
            await asyncio.gather(*(one(i) for i in range(n)))
    return t.figures


class _Timer:
    """Wall and CPU seconds of a block, plus the process's peak RSS at its end."""

    def __enter__(self) -> "_Timer":
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.figures = {"wall_s": time.perf_counter() - self.t0, "cpu_s": time.process_time() - self.c0,
                        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def measure(client: str, url: str, n: int, concurrency: int) -> dict[str, float]:
    if client == "distillc":
        return run_distillc(url, n, concurrency)
    if client == "aiohttp-raw":
        return asyncio.run(run_raw(url, n, concurrency))
    return asyncio.run(run_plain(url, n, concurrency, aiohttp_transport=client == "openai-aiohttp"))


# -- orchestration -------------------------------------------------------------------------------------
def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "tests.loopback", "--latency", str(latency)], cwd=ROOT,
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def run_case(client: str, url: str, n: int, concurrency: int) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, __file__, "--child", client, "--url", url, "--n", str(n),
                          "--concurrency", str(concurrency)], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=5000)
    p.add_argument("--latency", type=float, default=0.2)
    p.add_argument("--concurrency", type=int, nargs="+", default=[64, 256])
    p.add_argument("--clients", nargs="+", choices=CLIENTS, default=list(CLIENTS))
    p.add_argument("--child", choices=CLIENTS, help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.url, args.n, args.concurrency[0])))
        return
    server, url = start_server(args.latency)
    try:
        load = os.getloadavg()[0]
        print(f"N={args.n} latency={args.latency * 1000:.0f} ms, server in its own process, {os.cpu_count()} cores, "
              f"load average {load:.1f} at start")
        print(f"{'client':<16}{'conc':>6}{'wall s':>9}{'efficiency':>12}{'CPU s/1000':>12}{'peak MB':>10}")
        for conc in args.concurrency:
            for client in args.clients:
                r = run_case(client, url, args.n, conc)
                eff = args.n * args.latency / conc / r["wall_s"]
                print(f"{client:<16}{conc:>6}{r['wall_s']:>9.2f}{eff:>12.2f}"
                      f"{r['cpu_s'] / args.n * 1000:>12.2f}{r['peak_mb']:>10.0f}", flush=True)
    finally:
        server.stdin.close()
        server.wait(10)


if __name__ == "__main__":
    main()
