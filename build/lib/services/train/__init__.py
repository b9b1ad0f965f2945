"""Training host: collection, validation, features, training, selection and publishing."""
