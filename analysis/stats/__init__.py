"""Statistical building blocks for the judges: e-processes on shares, rank tests, histogram helpers.

Everything here works on numpy arrays of per-interval counts, so a judge can evaluate a whole
history (and the benchmark many simulated releases) without Python loops over requests.
"""
