"""What runs around every view: `around_request` (request id, request log line, latency,
CORS), `identity` (who is calling), `request_body` (the body size cap, chunked bodies
included) and `errors` (the one error envelope)."""
