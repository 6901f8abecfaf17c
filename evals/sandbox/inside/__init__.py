"""Code that runs inside the sandbox: the fork server, the confinement of each child and the test
harness.

This package is loaded by file path inside the sandbox (under the name ``distillc_inside``), so it
imports nothing from ``evals`` or ``compiler`` and uses only relative imports and the standard
library (numpy is optional). The parent process imports a few of its pure modules (``protocol``,
``encode``) to speak the same wire format.
"""
