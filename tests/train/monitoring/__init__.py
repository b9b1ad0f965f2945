"""Tests of train/monitoring/."""
