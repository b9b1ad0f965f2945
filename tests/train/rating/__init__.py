"""Tests of train/rating/."""
