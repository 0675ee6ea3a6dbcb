"""Environments: one task per module. Each depends only on rewardgym.core and its task libraries."""
