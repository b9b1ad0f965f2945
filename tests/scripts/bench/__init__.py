"""Tests of scripts/bench/."""
