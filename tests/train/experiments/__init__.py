"""Tests of train/experiments/."""
