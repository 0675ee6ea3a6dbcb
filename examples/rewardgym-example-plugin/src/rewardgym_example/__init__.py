"""An example rewardgym plugin: ``example/reverse-v0``, reverse a random word.

This package's ``__init__`` imports nothing, so loading the plugin module
(:mod:`rewardgym_example.plugin`) stays cheap; the environment lives in
:mod:`rewardgym_example.reverse` and is imported only when someone makes it.
"""

__version__ = "0.1.0"
