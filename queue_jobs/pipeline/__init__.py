"""The steps that turn a fetched page into the job's results."""
