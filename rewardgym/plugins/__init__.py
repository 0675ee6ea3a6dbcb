"""rewardgym's plugin system: pluggy hook specs, the manager that loads entry points, and the
built-in registrations (which go through the same hooks as any third-party plugin)."""

from rewardgym.plugins.hookspecs import hookimpl, hookspec

__all__ = ["hookimpl", "hookspec"]
