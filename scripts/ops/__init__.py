"""Operator helpers run by the shell scripts (pipeline.sh): progress, failed tasks, interrupted runs."""
