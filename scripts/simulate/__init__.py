"""Simulated users driving the real stack: the feedback loop and an online experiment (scripts/simulate.sh)."""
