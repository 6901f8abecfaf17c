"""The Ray executor (``executor: ray``, ``distillc compile --executor ray``).

The driver (the compiling process) stays the store's single writer and runs each stage's own logic;
the work that costs goes to Ray workers:

- LLM requests: the driver resolves the request cache first (nothing cached is paid again), then
  hands the misses in small chunks to sender actors, each with its own client and a share of the
  role's concurrency budget. Every request is journaled as sent when it is handed over; answers come
  back with each chunk and are journaled, cached and priced by the driver, so the ledger is the
  local executor's and a kill -9 of the driver costs at most the chunks handed over.
- Programs: the driver looks results up in the execution cache and spreads the rest in chunks over
  runner actors, each with its own sandbox pool; results are committed as chunks come back.
- Pure row-wise stages (no model, no sandbox): windows of partitions go through Ray Data's
  ``map_batches``, one partition per block, results committed in order.

Without ``--ray-address`` a local Ray instance is started for the compile and stopped after it;
``auto`` or ``HOST:PORT`` joins a running cluster (see the README for a multi-node cluster). Ray is
the optional extra ``distillc[ray]``.
"""

from __future__ import annotations

import io
import os
import socket
import warnings
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Sequence

from compiler.errors import BackendError, MissingDependency

if TYPE_CHECKING:
    import polars as pl

    from compiler.llm.dispatch import Outcome
    from compiler.llm.recorder import Job, Recorder

CONNECT_TIMEOUT_S = 30.0
LLM_CHUNK = 32          # requests per hand-over (what a kill of the driver may repay, per sender)
EXEC_CHUNK = 64         # programs per hand-over
PURE_WINDOW = 2         # partitions per Ray Data window, per worker


def _ray():
    try:
        import ray
    except ImportError:
        raise MissingDependency("the ray executor needs Ray: pip install 'distillc[ray]'") from None
    return ray


class RaySession:
    """A Ray connection for one compile, with its actors (created on first use)."""

    def __init__(self, address: str | None, workers: int | None = None):
        self.ray = _ray()
        self.address = address
        self.workers = workers or max(1, os.cpu_count() or 1)
        self._connect()
        self._senders: dict[str, list[Any]] = {}
        self._runners: list[Any] | None = None

    # -- connecting ------------------------------------------------------------------------------
    def _connect(self) -> None:
        """Start a local instance, or join ``auto`` / ``HOST:PORT`` (probed first, so an address where
        nothing listens fails within seconds instead of the Ray client's minute of retries)."""
        if self.address not in (None, "auto"):
            _probe(self.address)
        os.environ.setdefault("RAY_gcs_rpc_server_reconnect_timeout_s", str(int(CONNECT_TIMEOUT_S)))
        kwargs = {"address": self.address} if self.address else {"num_cpus": self.workers}
        where = self.address or "a local Ray instance"
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")    # a local instance for this compile only
        import logging

        for name in ("ray", "ray.data"):
            logging.getLogger(name).setLevel(logging.ERROR)
        try:
            self.ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                          ignore_reinit_error=True, **kwargs)
        except Exception as exc:
            raise BackendError(f"ray: cannot start or join {where}: {str(exc).splitlines()[0]}") from None

    def close(self) -> None:
        self.ray.shutdown()

    # -- LLM requests ----------------------------------------------------------------------------
    def send(self, config: Any, jobs: list["Job"], recorder: "Recorder", admits: Callable[[], bool],
             charge: Callable[[float], None], on_flush: Callable[[int], None] | None) -> "Outcome":
        from compiler.llm.dispatch import Outcome

        senders = self._senders_for(config)
        outcome, todo, running = Outcome(), deque(jobs), {}
        while todo or running:
            for actor in senders:
                while todo and sum(1 for a, _ in running.values() if a is actor) < 2:
                    if not admits() or outcome.halted:
                        outcome.not_sent.extend(todo)
                        todo.clear()
                        break
                    chunk = [todo.popleft() for _ in range(min(LLM_CHUNK, len(todo)))]
                    for job in chunk:
                        job.attempts += 1
                        recorder.sent(job)            # handed over: in flight from here on
                    outcome.sent += len(chunk)
                    running[actor.run.remote(chunk)] = (actor, chunk)
            if not running:
                break
            done, _ = self.ray.wait(list(running), num_returns=1)
            _, chunk = running.pop(done[0])
            self._settle(chunk, self.ray.get(done[0]), recorder, charge, outcome)
            recorder.flush()
            if on_flush:
                on_flush(len(chunk))
        return outcome

    def _settle(self, chunk: list["Job"], result: dict[str, Any], recorder: "Recorder",
                charge: Callable[[float], None], outcome: "Outcome") -> None:
        by_id = {job.call_id: job for job in chunk}
        for kind, call_id, attempts, *rest in result["events"]:
            job = by_id[call_id]
            job.attempts = attempts
            if kind == "retrying":
                recorder.retrying(job, *rest)
            elif kind == "ok":
                charge(recorder.complete(job, *rest))
            else:
                recorder.fail(job, *rest)
        if result.get("halted") and not outcome.halted:
            outcome.halted = result["halted"]

    def _senders_for(self, config: Any) -> list[Any]:
        key = config.model_dump_json()
        if key not in self._senders:
            n = self.workers
            share = max(1, config.max_concurrency // n)
            actor = self.ray.remote(Sender).options(max_concurrency=4)
            self._senders[key] = [actor.remote(key, share) for _ in range(n)]
        return self._senders[key]

    # -- programs ----------------------------------------------------------------------------------
    def execute(self, jobs: Sequence[Any], cache: Any, progress: Callable[[int], None]) -> list[Any]:
        from evals.sandbox.cache import cacheable, job_key

        keys = [job_key(j) for j in jobs]
        known = cache.get_many(list(set(keys)))
        missing = list({k: j for k, j in zip(keys, jobs) if k not in known}.items())
        progress(sum(1 for k in keys if k in known))
        runners = self._runners_for()
        results, todo, running = dict(known), deque(missing), {}
        while todo or running:
            for actor in runners:
                if todo and sum(1 for a, _ in running.values() if a is actor) < 2:
                    chunk = [todo.popleft() for _ in range(min(EXEC_CHUNK, len(todo)))]
                    running[actor.run.remote([j for _, j in chunk])] = (actor, chunk)
            done, _ = self.ray.wait(list(running), num_returns=1)
            _, chunk = running.pop(done[0])
            fresh = dict(zip((k for k, _ in chunk), self.ray.get(done[0])))
            cache.put_many({k: r for k, r in fresh.items() if cacheable(r)})     # committed as they arrive
            results.update(fresh)
            progress(sum(keys.count(k) for k in fresh))
        return [results[k] for k in keys]

    def _runners_for(self) -> list[Any]:
        if self._runners is None:
            self._runners = [self.ray.remote(Runner).remote() for _ in range(self.workers)]
        return self._runners

    # -- pure stages -------------------------------------------------------------------------------
    def map_pure(self, stage: Any, frames: list["pl.DataFrame"], base_dir: str) -> list[tuple[Any, Any]]:
        """(output frame, rejections) of a pure stage on each frame, in order, via Ray Data."""
        import polars as pl

        import logging

        data = self.ray.data
        for name in ("ray", "ray.data"):
            logging.getLogger(name).setLevel(logging.ERROR)
        ctx = data.DataContext.get_current()
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        ds = data.from_arrow([f.to_arrow() for f in frames])
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*")
        out = ds.map_batches(PureStage, fn_constructor_args=(type(stage), stage.params, base_dir),
                             batch_size=None, batch_format="pyarrow", max_restarts=0,
                             compute=data.ActorPoolStrategy(size=min(self.workers, len(frames))))
        results = []
        for row in out.iter_rows():
            results.append((_from_ipc(row["frame"], pl), _from_ipc(row["rejected"], pl)))
        return results


def _probe(address: str) -> None:
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=10).close()
    except (OSError, ValueError) as exc:
        raise BackendError(f"ray: no Ray cluster answers at {address} ({exc.strerror or exc})") from None


def _to_ipc(frame: Any) -> bytes:
    buf = io.BytesIO()
    frame.write_ipc(buf)
    return buf.getvalue()


def _from_ipc(blob: bytes, pl: Any) -> Any:
    return pl.read_ipc(io.BytesIO(blob))


class EventRecorder:
    """What a sender actor records instead of a store: the events the driver replays."""

    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.buffered = 0

    def sent(self, job: "Job") -> None:
        pass

    def retrying(self, job: "Job", reason: str, detail: str) -> None:
        self.events.append(("retrying", job.call_id, job.attempts, reason, detail))

    def complete(self, job: "Job", completion: Any, latency: float) -> float:
        self.events.append(("ok", job.call_id, job.attempts, completion, latency))
        return 0.0

    def fail(self, job: "Job", reason: str, detail: str, latency: float, usd: float = 0.0) -> None:
        self.events.append(("fail", job.call_id, job.attempts, reason, detail, latency, usd))

    def take(self) -> Any:
        from compiler.llm import fold

        return fold.Rows()

    def write(self, rows: Any) -> None:
        pass

    def flush(self) -> None:
        pass


class Sender:
    """A Ray actor sending LLM requests with its own client (a share of the concurrency budget)."""

    def __init__(self, config_json: str, concurrency: int):
        from compiler.llm.backend import make_backend
        from compiler.llm.concurrency import AdaptiveLimit, RateLimiter, RetryPolicy
        from compiler.recipe.schema import ModelConfig

        self.config = ModelConfig.model_validate_json(config_json)
        self.backend = make_backend(self.config)
        self.limit, self.retry = AdaptiveLimit(concurrency), RetryPolicy()
        self.rate = RateLimiter(self.config.rpm, self.config.tpm)

    async def run(self, jobs: list["Job"]) -> dict[str, Any]:
        from compiler.llm.dispatch import ConcurrentDispatch, run_in_process

        for job in jobs:
            job.attempts -= 1                    # the driver counted the hand-over as the first attempt
        recorder = EventRecorder()
        if getattr(self.backend, "concurrent", False):
            dispatch = ConcurrentDispatch(self.backend, recorder, limit=self.limit, rate=self.rate, retry=self.retry,
                                          max_attempts=self.config.max_retries + 1, admits=lambda: True,
                                          charge=lambda usd: None)
            outcome = await dispatch.run(jobs)
        else:
            outcome = run_in_process(self.backend, recorder, jobs, chunk=max(1, self.config.batch_size) * 4,
                                     admits=lambda: True, charge=lambda usd: None)
        return {"events": recorder.events, "halted": outcome.halted}


class Runner:
    """A Ray actor running programs in its own sandbox pool."""

    def run(self, jobs: list[Any]) -> list[Any]:
        from evals.sandbox import run_many

        return run_many(jobs)


class PureStage:
    """Ray Data's callable for a pure stage: one partition (a block) in, its output and rejections out."""

    def __init__(self, cls: type, params: Any, base_dir: str):
        self.stage, self.base_dir = cls(params), base_dir

    def __call__(self, batch: Any) -> dict[str, list]:
        import polars as pl

        frame = pl.from_arrow(batch)
        out = self.stage.run(frame, PureContext(self.stage.name, self.base_dir))
        rejected = out.rejected if out.rejected is not None else pl.DataFrame()
        return {"frame": [_to_ipc(out.frame)], "rejected": [_to_ipc(rejected)]}


class PureContext:
    """What a pure stage may use on a worker: its name, the recipe's directory, a silent progress bar."""

    def __init__(self, name: str, base_dir: str):
        from pathlib import Path

        self.name, self.base_dir = name, Path(base_dir)

    def progress(self, total: int | None, desc: str | None = None) -> Any:
        from tqdm import tqdm

        return tqdm(total=total, disable=True)

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"a pure stage on a Ray worker cannot use ctx.{name}")

