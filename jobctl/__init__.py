"""jobctl: the operator CLI for the medical transcription pipeline (`python -m jobctl --help`).

Self-contained on purpose: it runs on an operator's machine with boto3 only, without the
Lambda code (`lambdas/`) or the dev kit on sys.path.
"""
