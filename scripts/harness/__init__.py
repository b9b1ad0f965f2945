"""Processes, ports and servers shared by the benches, the simulations and the tests."""
