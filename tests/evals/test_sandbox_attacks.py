"""The attack suite: hostile programs are contained (the machine and this process unharmed,
nothing left running, nothing written outside the working directory) and labelled with the right
status. Runs at the default isolation, and the containment-critical ones again without
bubblewrap (the Landlock fallback)."""

from __future__ import annotations

import os
import secrets
import socket
import threading

import pytest

from evals.sandbox import Job, Limits, Status, TestSpec, run_many, run_one
from tests.evals.sandbox_data import processes_of, sandbox_uids

FAST = Limits(cpu_seconds=1, wall_seconds=10)   # the wall net leaves room for a CPU share on a busy machine
CHECK = "def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(3) == 9\n"


def attack(code: str, check: str = CHECK, limits: Limits = FAST) -> Job:
    return Job(code=code, tests=TestSpec(style="humaneval", entry_point="sq", check=check), limits=limits)


@pytest.fixture(params=["auto", "landlock"])
def isolation(request):
    return request.param


def contained(results, isolation: str = "auto") -> None:
    """Nothing of the jobs still runs, and the pool still judges an honest program correctly."""
    assert processes_of(sandbox_uids()) == []
    honest = run_one(attack("def sq(x):\n    return x * x\n"), isolation=isolation)
    assert honest.status is Status.PASSED
    for r in results:
        assert not r.passed or r.status is Status.PASSED


# ---- resource exhaustion ------------------------------------------------------------------------

@pytest.mark.slow
def test_exhaustion_attacks_are_stopped_and_labelled():
    cases = {
        "infinite loop": ("def sq(x):\n    while True:\n        pass\n", Status.TIMEOUT),
        "sleeping forever": ("import time\ndef sq(x):\n    time.sleep(1000)\n", Status.TIMEOUT),
        "fork bomb": ("import os\ndef sq(x):\n    while True:\n        os.fork()\n", Status.ERROR),
        "stubborn fork bomb": ("import os\ndef sq(x):\n    while True:\n        try:\n            os.fork()\n"
                               "        except OSError:\n            pass\n", Status.TIMEOUT),
        "memory bomb": ("def sq(x):\n    hoard = []\n    while True:\n        hoard.append(' ' * 10**7)\n", Status.MEMORY),
        "one huge allocation": ("def sq(x):\n    return bytearray(10**11)\n", Status.MEMORY),
        "1 GB of output": ("import sys\ndef sq(x):\n    block = 'x' * (1 << 20)\n    for _ in range(1024):\n"
                           "        sys.stdout.write(block)\n    return x * x\n", Status.OUTPUT_LIMIT),
        "1 GB file": ("def sq(x):\n    with open('big', 'w') as fh:\n        for _ in range(1024):\n"
                      "            fh.write('x' * (1 << 20))\n    return x * x\n", Status.OUTPUT_LIMIT),
    }
    small = Limits(cpu_seconds=2, memory_mb=256, wall_seconds=6)      # the bomb hits memory well before CPU
    results = run_many([attack(code, limits=small if name.startswith("memory") else FAST)
                        for name, (code, _) in cases.items()])
    for (name, (_, status)), result in zip(cases.items(), results):
        assert result.status is status, f"{name}: {result.status} {result.feedback}"
        assert result.feedback, name
    assert results[-2].stdout.startswith("x" * 1000) and "more bytes truncated" in results[-2].stdout
    assert results[0].cpu_s >= 0.5 and results[0].first_failure["error_type"] == "TimeoutError"
    contained(results)


# ---- the filesystem --------------------------------------------------------------------------------

def test_files_outside_the_working_directory_are_out_of_reach(tmp_path, isolation):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    secret = tmp_path / "secret.txt"
    token = secrets.token_hex(16)
    secret.write_text(token)
    secret.chmod(0o644)
    os.chmod(tmp_path, 0o755)
    stray = f"/tmp/distillc-attack-{secrets.token_hex(4)}"
    cases = {
        "write next to the victim": f"def sq(x):\n    open({str(tmp_path / 'new.txt')!r}, 'w').write('x')\n    return x * x\n",
        "delete the victim": f"import os\ndef sq(x):\n    os.remove({str(victim)!r})\n    return x * x\n",
        "write in /tmp": f"def sq(x):\n    open({stray!r}, 'w').write('x')\n    return x * x\n",
        "write in /etc": "def sq(x):\n    open('/etc/distillc-pwned', 'w').write('x')\n    return x * x\n",
        "delete a system file": "import os\ndef sq(x):\n    os.remove('/etc/hostname')\n    return x * x\n",
        "read a readable secret": f"def sq(x):\n    print(open({str(secret)!r}).read())\n    return x * x\n",
        "read /etc/shadow": "def sq(x):\n    print(open('/etc/shadow').read())\n    return x * x\n",
        "list /root": "import os\ndef sq(x):\n    print(os.listdir('/root'))\n    return x * x\n",
    }
    results = run_many([attack(code) for code in cases.values()], isolation=isolation)
    for name, result in zip(cases, results):
        assert result.status is Status.ERROR, f"{name}: {result.status} {result.feedback}"
        assert result.first_failure["error_type"] in ("PermissionError", "FileNotFoundError", "OSError"), name
        assert token not in result.stdout + result.stderr + result.feedback
    assert victim.read_text() == "keep me" and not (tmp_path / "new.txt").exists()
    assert not os.path.exists(stray) and not os.path.exists("/etc/distillc-pwned") and os.path.exists("/etc/hostname")
    contained(results, isolation)


def test_the_working_directory_is_private_and_removed():
    code = ("import os\ndef sq(x):\n    here = os.getcwd()\n    open('scratch', 'w').write('ok')\n"
            "    assert open(os.path.join(here, 'scratch')).read() == 'ok'\n    print(here)\n    return x * x\n")
    first, second = run_many([attack(code), attack(code.replace("ok", "ok2"))])
    assert first.status is second.status is Status.PASSED
    assert first.stdout.strip() != second.stdout.strip()
    assert not os.path.exists(first.stdout.strip())


# ---- network and other processes ---------------------------------------------------------------------

def test_no_network_even_to_loopback(isolation):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    accepted = []

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(listener.accept())
            except OSError:
                pass

    stop = threading.Event()
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    code = f"import socket\ndef sq(x):\n    socket.create_connection(('127.0.0.1', {port}), timeout=2).send(b'hi')\n    return x * x\n"
    udp = f"import socket\ndef sq(x):\n    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'hi', ('127.0.0.1', {port}))\n    return x * x\n"
    try:
        results = run_many([attack(code), attack(udp)], isolation=isolation)
    finally:
        stop.set()
        thread.join()
        listener.close()
    assert accepted == []
    for result in results:
        assert result.status is Status.ERROR and result.first_failure["error_type"] in ("PermissionError", "ConnectionRefusedError", "OSError")
    contained(results, isolation)


def test_killing_the_parent_or_everyone_fails_harmlessly(isolation):
    cases = [
        "import os, signal\ndef sq(x):\n    os.kill(os.getppid(), signal.SIGKILL)\n    return x * x\n",
        "import os, signal\ndef sq(x):\n    os.kill(1, signal.SIGKILL)\n    return x * x\n",
        f"import os, signal\ndef sq(x):\n    os.kill({os.getpid()}, signal.SIGKILL)\n    return x * x\n",
    ]
    results = run_many([attack(code) for code in cases], isolation=isolation)
    for result in results:
        assert result.status is Status.ERROR and result.first_failure["error_type"] in ("PermissionError", "ProcessLookupError")
    sweep = run_one(attack("import os, signal\ndef sq(x):\n    os.kill(-1, signal.SIGKILL)\n    return x * x\n"), isolation=isolation)
    assert sweep.status is Status.PASSED            # kills only its own kind: there is nobody else
    contained(results, isolation)


def test_a_daemon_does_not_outlive_the_program(isolation):
    code = ("import os, time\ndef sq(x):\n    if os.fork() == 0:\n        os.setsid()\n        if os.fork() == 0:\n"
            "            time.sleep(120)\n        os._exit(0)\n    return x * x\n")
    result = run_one(attack(code), isolation=isolation)
    assert result.status is Status.PASSED
    contained([result], isolation)


def test_limits_cannot_be_raised_from_inside():
    raise_cpu = ("import resource\ndef sq(x):\n    resource.setrlimit(resource.RLIMIT_CPU, (resource.RLIM_INFINITY,) * 2)\n"
                 "    return x * x\n")
    raise_then_loop = ("import resource\ndef sq(x):\n    try:\n        resource.setrlimit(resource.RLIMIT_CPU, (100, 100))\n"
                       "    except ValueError:\n        pass\n    while True:\n        pass\n")
    more_memory = ("import resource\ndef sq(x):\n    resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2)\n"
                   "    return x * x\n")
    results = run_many([attack(raise_cpu), attack(raise_then_loop), attack(more_memory)])
    assert [r.status for r in results] == [Status.ERROR, Status.TIMEOUT, Status.ERROR]
    assert results[0].feedback == "ValueError : not allowed to raise maximum limit"
    contained(results)


# ---- forging a pass ---------------------------------------------------------------------------------

def test_exiting_early_is_never_a_pass():
    cases = [
        "import os\nos._exit(0)\ndef sq(x):\n    return 0\n",
        "import sys\ndef sq(x):\n    sys.exit(0)\n",
        "import os\ndef sq(x):\n    os._exit(0)\n",
        "import atexit, os\natexit.register(lambda: os._exit(0))\ndef sq(x):\n    raise SystemExit(0)\n",
        # writing what looks like the harness's report, then leaving
        "import os, json\ndef sq(x):\n    for ev in ({'ev': 'case', 'i': 0, 'ok': True}, {'ev': 'done', 'nonce': ''}):\n"
        "        os.write(3, (json.dumps({**ev, 'pid': os.getpid()}) + '\\n').encode())\n    os._exit(0)\n",
        "import os, signal\ndef sq(x):\n    os.kill(os.getpid(), signal.SIGTERM)\n",
    ]
    results = run_many([attack(code) for code in cases])
    for code, result in zip(cases, results):
        assert not result.passed and result.status in (Status.ERROR, Status.KILLED), code
        assert result.feedback
    assert results[0].first_failure["error_type"] == "EarlyExit"
    assert results[1].feedback == "SystemExit : 0"
    assert results[-1].status is Status.KILLED and "SIGTERM" in results[-1].feedback


def test_monkeypatching_cannot_make_wrong_code_pass():
    approx = "import math\ndef check(candidate):\n    assert math.isclose(candidate(1), 2.5)\n    assert abs(candidate(2) - 2.5) < 1e-6\n"
    cases = {
        "patched abs": ("import builtins\nbuiltins.abs = lambda x: 0\ndef sq(x):\n    return 0.0\n", approx),
        "patched isclose": ("import math\nmath.isclose = lambda *a, **k: True\ndef sq(x):\n    return 0.0\n", approx),
        "own check": ("def check(candidate):\n    pass\ndef sq(x):\n    return 0\n", CHECK),
        "always equal": ("class Yes:\n    def __eq__(self, other):\n        return True\ndef sq(x):\n    return Yes()\n", CHECK),
        "equal subclass": ("class Yes(int):\n    def __eq__(self, other):\n        return True\ndef sq(x):\n    return Yes(0)\n", CHECK),
        "patch during the test": ("import math\ndef sq(x):\n    math.isclose = lambda *a, **k: True\n    return 0.0\n", approx),
        "rewrite the assert helper": ("import sys\ndef sq(x):\n    frame = sys._getframe(2)\n"
                                      "    frame.f_builtins['__dc_truth__'] = lambda i, v: True\n    return 0\n", CHECK),
        "rewrite the comparison table": ("import sys\ndef sq(x):\n    sys.modules['distillc_inside.guard']._OPS['Eq'] = lambda a, b: True\n"
                                         "    return 0\n", CHECK),
        "patched trusted class": ("import fractions\nfractions.Fraction.__eq__ = lambda s, o: True\n"
                                  "def sq(x):\n    return fractions.Fraction(1, 3)\n", CHECK),
    }
    results = run_many([attack(code, check) for code, check in cases.values()])
    for name, result in zip(cases, results):
        assert result.status is Status.FAILED, f"{name}: {result.status} {result.feedback}"
    assert results[3].first_failure["error_type"] == "UntrustedValue"
    assert results[5].first_failure["error_type"] in ("Tampering", "AssertionError")
    assert results[7].first_failure["error_type"] == "Tampering"
    assert results[8].first_failure["error_type"] == "Tampering"


def test_tracing_and_namespaces_are_denied():
    call = ("import ctypes\ndef sq(x):\n    libc = ctypes.CDLL(None, use_errno=True)\n"
            "    assert libc.{} == 0, ctypes.get_errno()\n    return x * x\n")
    calls = ["ptrace(16, 1, 0, 0)", "unshare(0x10000000)", "unshare(0x40000000)", "mount(b'none', b'/tmp', b'tmpfs', 0, 0)"]
    results = run_many([attack(call.format(c)) for c in calls])
    for c, result in zip(calls, results):
        assert result.status is Status.FAILED and result.feedback == "AssertionError : 1", c    # EPERM


def test_isolation_level_is_recorded(isolation):
    result = run_one(attack("def sq(x):\n    return x * x\n"), isolation=isolation)
    parts = result.isolation.split("+")
    assert parts[-1] == "rlimits"
    if isolation == "landlock":
        assert "bwrap" not in parts and "landlock" in parts
    if os.geteuid() == 0:
        assert "uid" in parts


def test_many_processes_together_stay_under_the_worker_memory_cap(monkeypatch):
    from evals.sandbox import pool

    monkeypatch.setenv("DISTILLC_SANDBOX_WORKER_MEMORY_MB", "1024")
    pool.shutdown()
    try:
        probe = run_one(attack("def sq(x):\n    return x * x\n"), workers=1)
        if "cgroup" not in probe.isolation.split("+"):
            pytest.skip("no cgroup for the workers on this machine")
        code = ("import os, time\ndef sq(x):\n    kids = []\n    for _ in range(6):\n        pid = os.fork()\n"
                "        if pid == 0:\n            hoard = b'x' * (400 << 20)\n            time.sleep(20)\n            os._exit(0)\n"
                "        kids.append(pid)\n    for kid in kids:\n        assert os.waitpid(kid, 0)[1] == 0\n    return x * x\n")
        limits = Limits(cpu_seconds=5, memory_mb=600, wall_seconds=8)
        worker = next(iter(pool._POOLS.values())).workers[0]
        result = run_one(Job(code=code, tests=TestSpec(style="humaneval", entry_point="sq", check=CHECK), limits=limits),
                         workers=1)
        peak = [int((d / "memory.max_usage_in_bytes").read_text()) for d in worker._cgroup.dirs
                if (d / "memory.max_usage_in_bytes").exists()]
        assert result.status in (Status.FAILED, Status.MEMORY, Status.KILLED, Status.TIMEOUT) and not result.passed
        assert peak and max(peak) <= (1024 << 20)
        contained([result])
    finally:
        pool.shutdown()
