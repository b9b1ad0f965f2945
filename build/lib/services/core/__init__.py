"""Code shared by the training and serving hosts: settings, schemas, features, registry, catalog."""
