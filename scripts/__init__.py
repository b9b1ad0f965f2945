"""The project's Python programs: benches, simulations, operator tools, and the harness they share with the tests."""
