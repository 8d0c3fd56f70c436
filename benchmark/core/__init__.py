"""Used by every stage: the error types (`errors`) and atomic file writes (`atomic`).
"""
