"""The next-movie recommender pipeline: protocol data, metrics, baselines, SASRec training, task."""
