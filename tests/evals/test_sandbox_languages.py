"""Compiles-and-runs (SODA's static view) in other languages: each runs when its toolchain is
installed here and is skipped cleanly (status ``skipped``) when it is not."""

from __future__ import annotations

import pytest

from evals.sandbox import Job, Limits, Status, TestSpec, run_many, run_one, toolchains

PROGRAMS = {
    "c": ('#include <stdio.h>\nint main(void) { printf("hi\\n"); return 0; }\n',
          "int main(void) { return 3; }\n", "int main(void) { syntax error }\n"),
    "cpp": ('#include <iostream>\nint main() { std::cout << "hi" << std::endl; }\n',
            "int main() { return 3; }\n", "int main() { nope; }\n"),
    "java": ('public class Hi { public static void main(String[] a) { System.out.println("hi"); } }\n',
             "public class Hi { public static void main(String[] a) { System.exit(3); } }\n",
             "public class Hi { void broken( }\n"),
    "go": ('package main\nimport "fmt"\nfunc main() { fmt.Println("hi") }\n',
           'package main\nimport "os"\nfunc main() { os.Exit(3) }\n', "package main\nfunc main() { x := }\n"),
    "javascript": ('console.log("hi");\n', "process.exit(3);\n", "function ( {\n"),
    "typescript": ('const s: string = "hi";\nconsole.log(s);\n', "process.exit(3);\n", "let x: number = ;\n"),
}
SLOW = {"java", "go", "typescript"}


def _job(language: str, code: str, cpu: float = 10) -> Job:
    return Job(code=code, tests=TestSpec(style="run", language=language), limits=Limits(cpu_seconds=cpu))


@pytest.mark.parametrize("language", [pytest.param(k, marks=pytest.mark.slow) if k in SLOW else k for k in PROGRAMS])
def test_compiles_and_runs(language):
    if not toolchains.available(language):
        assert run_one(_job(language, PROGRAMS[language][0])).status is Status.SKIPPED
        pytest.skip(f"no {language} toolchain here")
    hello, exits_3, broken = PROGRAMS[language]
    ok, bad_exit, bad_source = run_many([_job(language, hello), _job(language, exits_3), _job(language, broken)])
    assert ok.status is Status.PASSED and ok.stdout.strip() == "hi", ok.feedback + ok.stderr
    assert bad_exit.status is Status.ERROR and bad_exit.feedback.endswith("exited with status 3")
    expected = Status.ERROR if language == "javascript" else Status.SYNTAX_ERROR
    assert bad_source.status is expected and bad_source.feedback


@pytest.mark.slow
def test_compiled_programs_are_confined_too():
    if not toolchains.available("c"):
        pytest.skip("no C compiler here")
    loop = "int main(void) { for (;;) {} }\n"
    escape = '#include <stdio.h>\nint main(void) { return fopen("/etc/distillc-c", "w") ? 0 : 1; }\n'
    fork = "#include <unistd.h>\nint main(void) { for (;;) fork(); }\n"
    results = run_many([_job("c", loop, cpu=1), _job("c", escape), Job(code=fork, tests=TestSpec(style="run", language="c"),
                                                                      limits=Limits(cpu_seconds=1, wall_seconds=4))])
    assert results[0].status is Status.TIMEOUT
    assert results[1].status is Status.ERROR
    assert results[2].status is Status.TIMEOUT
