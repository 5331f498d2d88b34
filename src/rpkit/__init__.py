"""rpkit: a pluggable, strict OpenID Connect relying-party framework.

The core (this package, minus :mod:`rpkit.litestar` and :mod:`rpkit.testing`) is framework-free.
:mod:`rpkit.testing` ships a fake OpenID Provider for testing applications built on rpkit.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
