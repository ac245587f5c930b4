"""The shapes of what crosses HTTP: `inputs` (the marshmallow schemas requests and query
strings are loaded with), `responses` (the schemas bodies are dumped through) and `apidoc`
(how both become the OpenAPI document)."""
