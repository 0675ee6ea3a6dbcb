"""Run-config presets shipped with rewardgym (also reachable as the top-level configs/ folder)."""
