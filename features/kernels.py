"""How the feature kernels run (features/windows.py, features/sleep_state.py): compiled by numba, or as the same
Python code interpreted, for a process that computes the nights of one person and then ends.

Compiled is the default and what every nightly run, rebuild and backfill uses: interpreted, a 1k-person rebuild
would take hours. But compiling costs a short process more than it gives: importing numba takes ~55 MB and loading
the cached kernels into LLVM another ~50 MB and ~0.5 s, while one person's whole history (a few thousand nights) runs
interpreted in about the same time (Apple Health import of 618 nights: 5.7 s compiled, 5.9 s interpreted; peak
RSS 356 -> 252-256 MB with numba never imported; benchmarks/README.md). `emberwatch import ...` therefore chooses interpreted
before anything loads the kernels (`run_interpreted`). The code is the same either way, and
tests/test_kernels_interpreted.py holds the two to equal results on a cohort with every kind of night.

The choice is made once per process, when the kernel modules are first imported (`decorators`); the environment
variable EMBERWATCH_KERNELS (`compiled` or `interpreted`) sets it for a process from outside.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

ENV = "EMBERWATCH_KERNELS"
COMPILED, INTERPRETED = "compiled", "interpreted"
KERNEL_MODULES = ("features.windows", "features.sleep_state")


def mode() -> str:
    value = os.environ.get(ENV, COMPILED).strip().lower() or COMPILED
    if value not in (COMPILED, INTERPRETED):
        raise ValueError(f"{ENV} is {value!r}: it must be '{COMPILED}' or '{INTERPRETED}'")
    return value


def run_interpreted() -> bool:
    """Interpreted kernels for the rest of this process (True), for entry points that compute one person's nights
    and exit. A choice made outside (EMBERWATCH_KERNELS set) stands, and a process that has loaded the kernels
    keeps them as they are: then the answer is whether they are interpreted."""
    if ENV in os.environ or any(name in sys.modules for name in KERNEL_MODULES):
        return mode() == INTERPRETED
    os.environ[ENV] = INTERPRETED
    return True


def _returned_as_is(*args: Any, **options: Any) -> Any:
    """numba.njit's two forms (@njit and @njit(...)), giving back the function itself."""
    if len(args) == 1 and callable(args[0]) and not options:
        return args[0]
    return lambda function: function


def decorators() -> tuple[Callable[..., Any], Callable[..., Any]]:
    """(njit, prange) for a kernel module, as this process runs kernels: numba's, or ones that leave the Python
    code as it is. Called when a kernel module is imported, so the choice must be made before (run_interpreted);
    numba itself is imported only here, and only for compiled kernels."""
    if mode() == INTERPRETED:
        return _returned_as_is, range
    from numba import njit, prange

    return njit, prange
