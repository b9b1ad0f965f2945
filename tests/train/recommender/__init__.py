"""Tests of train/recommender/."""
