"""Tests of train/movies/."""
