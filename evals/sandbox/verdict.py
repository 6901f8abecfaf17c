"""From a job to the message the sandbox gets, and from the sandbox's reply to an ``ExecResult``.

The verdict is decided here, in the parent: a run passes only if every test was judged to hold
*and* the harness's final ``done`` event arrived with this job's nonce. A program that exits early
(``sys.exit``, ``os._exit``, an ``atexit`` hook, a signal) never produces that event.
"""

from __future__ import annotations

import dataclasses
import math
import secrets
import signal

from evals.sandbox import compare, toolchains
from evals.sandbox.styles import STYLES
from evals.sandbox.types import ExecResult, Job, Limits, Status, plain_dict


def wall_seconds(limits: Limits) -> float:
    """The wall-clock safety net: generous, because CPU time is the real limit and a busy
    machine must not turn passes into timeouts."""
    if limits.wall_seconds is not None:
        return float(limits.wall_seconds)
    return 3.0 * math.ceil(limits.cpu_seconds) + 10.0


def effective_limits(job: Job) -> Limits:
    """The job's limits, with the process count raised for runtimes that use many threads."""
    chain = toolchains.TOOLCHAINS.get(toolchains.normalise(job.tests.language))
    if chain and chain.min_processes > job.limits.max_processes:
        return dataclasses.replace(job.limits, max_processes=chain.min_processes)
    return job.limits


def message(job: Job) -> dict:
    """The job as sent to a fork server (expected values of input/output tests stay here)."""
    spec = job.tests
    body = STYLES[spec.style].payload(spec)
    language = toolchains.normalise(spec.language)
    if spec.style != "run" and language != "python":
        raise ValueError(f"style {spec.style!r} runs Python only, not {language!r}")
    if language != "python":
        body["toolchain"] = toolchains.commands(language, job.code)
    limits = effective_limits(job)
    return {"style": spec.style, "code": job.code, "nonce": secrets.token_hex(16),
            "limits": plain_dict(limits), "wall_seconds": wall_seconds(limits), **body}


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _infrastructure(reply: dict, limits: Limits) -> tuple[Status, dict] | None:
    """Statuses decided by how the process ended rather than by the tests."""
    killed, sig = reply.get("killed"), reply.get("signal")
    cpu_limit = max(1, math.ceil(limits.cpu_seconds))
    if killed == "wall":
        return Status.TIMEOUT, {"error_type": "TimeoutError",
                                "message": f"wall-clock limit of {reply.get('wall_s', 0):.0f} s reached"}
    if killed == "output":
        return Status.OUTPUT_LIMIT, {"error_type": "OutputLimitExceeded",
                                     "message": "the program wrote more output than allowed"}
    if sig == signal.SIGXCPU or (sig == signal.SIGKILL and reply.get("cpu_s", 0) >= cpu_limit - 0.05):
        return Status.TIMEOUT, {"error_type": "TimeoutError", "message": f"CPU time limit of {cpu_limit} s exceeded"}
    if sig is not None:
        if reply.get("maxrss_kb", 0) * 1024 >= 0.9 * (limits.memory_mb << 20):
            return Status.MEMORY, {"error_type": "MemoryError", "message": f"killed by {_signal_name(sig)} at the memory limit"}
        return Status.KILLED, {"error_type": "Killed", "message": f"killed by {_signal_name(sig)}"}
    return None


def _error_status(event: dict) -> Status:
    kind = event.get("type")
    if kind == "MemoryError":
        return Status.MEMORY
    if kind == "CPUTimeExceeded":
        return Status.TIMEOUT
    if kind == "FileSizeExceeded" or event.get("errno") == 27:          # EFBIG
        return Status.OUTPUT_LIMIT
    return Status.ERROR


@dataclasses.dataclass
class _Tally:
    n_passed: int = 0
    outputs: list = dataclasses.field(default_factory=list)
    status: Status | None = None
    failure: dict | None = None
    done: bool = False

    def fail(self, status: Status, failure: dict) -> None:
        if self.status is None:
            self.status, self.failure = status, failure


def _special(event: dict, tally: _Tally, nonce: str) -> None:
    kind = event.get("ev")
    if kind == "syntax":
        tally.fail(Status.SYNTAX_ERROR, {"error_type": event.get("type", "SyntaxError"), "message": event.get("msg", "")})
    elif kind == "error":
        tally.fail(_error_status(event), {"error_type": event.get("type", "Error"), "message": event.get("msg", "")})
    elif kind == "tamper":
        tally.fail(Status.FAILED, {"error_type": "Tampering",
                                   "message": f"the program changed {event.get('what')} while the tests ran"})
    elif kind in ("confine", "internal"):
        tally.fail(Status.ERROR, {"error_type": "SandboxError", "message": event.get("msg", "")})
    elif kind == "done" and event.get("nonce") == nonce:
        tally.done = True


def _tally(job: Job, events: list[dict], nonce: str) -> _Tally:
    style, tally = STYLES[job.tests.style], _Tally()
    for event in events:
        if tally.status is not None:
            break
        if event.get("ev") != "case":
            _special(event, tally, nonce)
            continue
        index = event.get("i")
        if not isinstance(index, int) or index != tally.n_passed:
            continue                                    # out of order: not the harness's
        ok, failure = style.judge_case(job.tests, index, event)
        if style.COLLECTS_OUTPUTS:
            tally.outputs.append(style.output(event))
        if ok:
            tally.n_passed += 1
        else:
            tally.fail(Status.FAILED if "error_type" not in failure or failure["error_type"] in
                       ("AssertionError", "UntrustedValue") else Status.ERROR, failure)
    return tally


def _early_exit(reply: dict) -> dict:
    code = reply.get("exit_code")
    return {"error_type": "EarlyExit",
            "message": f"the program ended (exit status {code}) before the tests finished"}


def judge(job: Job, sent: dict, reply: dict, isolation: str) -> ExecResult:
    """The ``ExecResult`` for one job from the server's reply."""
    tally = _tally(job, reply.get("events") or [], sent["nonce"])
    n_total = max(job.tests.n_tests, 1) if job.tests.style == "run" else job.tests.n_tests
    status, failure = tally.status, tally.failure
    if status is None:
        infra = _infrastructure(reply, job.limits)
        if infra:
            status, failure = infra
        elif tally.done and tally.n_passed >= n_total:
            status = Status.PASSED
        else:
            status, failure = Status.ERROR, _early_exit(reply)
    return ExecResult(
        status=status, passed=status is Status.PASSED, n_passed=tally.n_passed, n_total=n_total,
        first_failure=failure, feedback=compare.feedback(failure) if failure else "",
        stdout=reply.get("stdout", ""), stderr=reply.get("stderr", ""),
        cpu_s=round(float(reply.get("cpu_s", 0.0)), 4), wall_s=round(float(reply.get("wall_s", 0.0)), 4),
        isolation=isolation, outputs=tally.outputs if job.tests.style in ("io", "evalplus") else None,
    )
