"""The weekly hyperparameter search of the rating model: search, its S3 store, storage, CLI."""
