"""Stage 1, run: profiles and overrides (`config`), the sweep plan and its execution (`runner`), training and resuming,
launchers (local, --jobs, SLURM), job state and status, hardware checks, `bench profile`, the paper suite
(`reproduce`), a finished run loaded again (`finished_run`).
"""
