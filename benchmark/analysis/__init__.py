"""Stage 4, analysis: records -> tables (`tables`, `dataset_table`), significance tests, the paper comparison
(`compare`), claims, precision drift.
"""
