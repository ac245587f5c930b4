"""LLM providers: an interface, the OpenAI-compatible provider and the offline one."""
