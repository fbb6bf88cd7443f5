"""Jobs: what each command does, as functions that take a config and return their results.

Each job reports progress, warnings and failed inputs through a
:class:`lmaczs_cli.jobs.reporter.Reporter` and prints nothing; ``cli/`` parses
options, calls a job and prints what it returns.
"""
