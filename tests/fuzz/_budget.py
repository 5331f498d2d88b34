"""How many examples each fuzz test runs, and how many ran.

Every property test in ``tests/fuzz`` is decorated with :func:`fuzz` (under ``@given``), which
applies the reproducible :data:`PROFILE` with that test's ``max_examples`` and counts the examples
that ran to completion. ``conftest.py`` prints the totals when the session ends.

``RPKIT_FUZZ_SCALE=10`` multiplies every budget for a longer run (the examples stay derandomized:
the same seed, more of them).
"""

from __future__ import annotations

import functools
import inspect
import os
from collections import Counter
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, Phase, settings

PROFILE = "rpkit-fuzz"
SCALE = float(os.environ.get("RPKIT_FUZZ_SCALE", "1"))

settings.register_profile(
    PROFILE,
    # The same examples on every machine and every run: a failure in CI reproduces locally.
    derandomize=True,
    database=None,
    deadline=None,
    # No explain phase: it reruns failing examples many times and only adds prose.
    phases=(Phase.explicit, Phase.generate, Phase.shrink),
    # Shared apps and fake OPs are function-scoped fixtures on purpose (one per test, reused by
    # its examples); speed health checks would make a slow CI machine fail on timing alone.
    suppress_health_check=(
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ),
    print_blob=True,
)

BUDGETS: dict[str, int] = {}
"""Test name → its ``max_examples`` (after scaling)."""
COMPLETED: Counter[str] = Counter()
"""Test name → examples that ran to completion (not rejected by ``assume``, not failing)."""


def fuzz(max_examples: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Run the decorated property test for ``max_examples`` examples under :data:`PROFILE`, and
    count them. Put it *under* ``@given`` so it wraps the test body."""
    budget = max(1, round(max_examples * SCALE))

    def decorate(test: Callable[..., Any]) -> Callable[..., Any]:
        name = f"{test.__module__.rsplit('.', 1)[-1]}::{test.__name__}"
        BUDGETS[name] = budget
        if inspect.iscoroutinefunction(test):

            @functools.wraps(test)
            async def counted_async(*args: Any, **kwargs: Any) -> None:
                await test(*args, **kwargs)
                COMPLETED[name] += 1

            wrapped: Callable[..., Any] = counted_async
        else:

            @functools.wraps(test)
            def counted(*args: Any, **kwargs: Any) -> None:
                test(*args, **kwargs)
                COMPLETED[name] += 1

            wrapped = counted
        return settings(settings.get_profile(PROFILE), max_examples=budget)(wrapped)

    return decorate
