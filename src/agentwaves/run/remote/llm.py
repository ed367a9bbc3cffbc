"""The task's LLM client on a node, built from the head's settings and the secrets passed at call time."""

from __future__ import annotations

import hashlib
from pathlib import Path

from agentwaves.llm.base import LLM
from agentwaves.llm.registry import NoCacheLLM, make_llm
from agentwaves.llm.retry import OnRetry, RetryingLLM, RetryPolicy
from agentwaves.run.remote.spec import LLMSpec, SecretEnv


def node_llm(spec: LLMSpec, secrets: SecretEnv, on_retry: OnRetry, scratch: Path) -> LLM:
    policy = RetryPolicy(
        max_attempts=spec.retry_attempts,
        initial_wait=spec.retry_initial_wait,
        retry_after_cap=spec.retry_after_cap,
    )
    if spec.name == "anthropic":
        from agentwaves.llm.anthropic import AnthropicLLM

        # the key goes to the client only: never into os.environ, a file or an event
        inner: LLM = AnthropicLLM(
            spec.model,
            api_key=secrets.get("ANTHROPIC_API_KEY") or "",
            base_url=secrets.get("ANTHROPIC_BASE_URL"),
        )
        if not spec.cache:
            inner = NoCacheLLM(inner)
        return RetryingLLM(inner, policy, on_retry=on_retry)
    script: Path | None = None
    if spec.fake_script is not None:
        digest = hashlib.sha256(spec.fake_script.encode()).hexdigest()[:16]
        script = scratch / "scripts" / f"{digest}{spec.fake_suffix}"
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(spec.fake_script, encoding="utf-8")
    return make_llm(
        spec.name,
        model=spec.model,
        fake_script=script,
        fake_time_scale=spec.fake_time_scale,
        cache=spec.cache,
        retry=policy,
        on_retry=on_retry,
    )
