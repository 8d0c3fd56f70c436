"""Stage 5, presentation: figures (`plots`, `plots_ensemble`, `figures`), the report, forecasts exported for other
tools (`export`).
"""
