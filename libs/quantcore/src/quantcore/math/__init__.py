"""The strategy's math: pure, vectorised functions (NumPy), no I/O.

Services, tests, benchmarks and backtests call the same code. Percentages are percent
(2.0 = 2 %); ratios (imbalance, success rate) are 0..1.
"""
