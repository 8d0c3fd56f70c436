"""Stage 2, scoring: a model's forecasts on a split scored (`evaluation`, `metrics`, `spectra`) and, for an ensemble,
`ensemble` (fair CRPS, spread-skill, rank histogram).
"""
