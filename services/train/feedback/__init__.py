"""The app's feedback: curated layout, curation, erasure, impressions join, online evaluation."""
