"""What runs around every view: `around_request` (request id, request log line, latency,
CORS), `identity` (who is calling) and `errors` (the one error envelope)."""
