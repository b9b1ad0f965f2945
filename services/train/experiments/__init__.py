"""Online experiments: the recommender canary (start, guards, statistics, judge), the rating shadow."""
