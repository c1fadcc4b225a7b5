"""A discrete-event simulation of the pipeline at the scale it is built for.

The project's real start, dispatch, finish and reconcile classes run against fast
in-memory stand-ins for S3, DynamoDB, SQS, EventBridge and Transcribe Medical, on a
virtual clock: 100,000 uploads take minutes of wall time, not days (moto's SQS and GSI
queries walk every item on each call, so they grow as N squared).
"""
