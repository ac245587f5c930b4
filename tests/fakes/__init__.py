"""Local fakes of the services the job service talks to (OpenAI API, web sites)."""
