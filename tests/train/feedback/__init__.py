"""Tests of train/feedback/."""
