"""Stage 3, record: the typed run record (`records`, atomic JSON) and what fit and test hand it (`outcomes`).
"""
