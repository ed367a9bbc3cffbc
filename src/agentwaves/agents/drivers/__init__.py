"""The agent CLIs as backends: Claude Code, Codex, any ACP agent; a shared process runner."""
