"""The `anthropic` kernel: one Messages API call per request through the official SDK.

The SDK's own retries are off (`max_retries=0`): the runner owns retries, backoff and
accounting for every backend alike. The SDK timeout is only a backstop behind the runner's.
No temperature is sent by default: recent SDKs dropped the parameter from `messages.create` and
recent models reject it; set `temperature` to send one anyway (as an extra body field).
"""

from __future__ import annotations

from typing import Any

from mcp_harness.kernels.base import KernelReply, KernelRequest, Usage
from mcp_harness.kernels.prompt import (
    SYSTEM_PROMPT,
    clean_reply,
    render_prompt,
    split_candidates,
)

DEFAULT_MODEL = "claude-sonnet-4-6"


class AnthropicKernel:
    """`AsyncAnthropic.messages.create` with the system prompt and the rendered prompt."""

    name = "anthropic"
    billable = True

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        model: str = DEFAULT_MODEL,
        timeout_s: float = 600.0,
        temperature: float | None = None,
    ) -> None:
        import anthropic  # imported here: the offline default must not pay for the SDK

        self.model = model
        self.base_url = base_url
        self.temperature = temperature
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_s
        )

    async def complete(self, request: KernelRequest) -> KernelReply:
        kwargs: dict[str, Any] = {}
        if self.temperature is not None:
            kwargs["extra_body"] = {"temperature": self.temperature}
        message = await self._client.messages.create(
            model=self.model,
            max_tokens=request.max_tokens,
            system=SYSTEM_PROMPT,
            messages=[{"role": "user", "content": render_prompt(request)}],
            **kwargs,
        )
        text = "".join(
            getattr(block, "text", "") for block in message.content if block.type == "text"
        )
        usage = message.usage
        input_tokens = (
            (usage.input_tokens or 0)
            + (getattr(usage, "cache_creation_input_tokens", None) or 0)
            + (getattr(usage, "cache_read_input_tokens", None) or 0)
        )
        spent = Usage(input_tokens, usage.output_tokens or 0, calls=1)
        return reply_from_text(
            clean_reply(text), spent, message.stop_reason == "max_tokens", request
        )


def reply_from_text(
    text: str, usage: Usage, truncated: bool, request: KernelRequest
) -> KernelReply:
    """Shared by the API kernels: an empty answer is a failed reply, truncation is noted,
    several candidates asked for are taken apart (`split_candidates`)."""
    if not text.strip():
        return KernelReply(text="", ok=False, confidence=0.0, usage=usage, reason="empty reply")
    reason = f"output truncated at max_tokens={request.max_tokens}" if truncated else ""
    text, alternatives = split_candidates(text, request, truncated)
    return KernelReply(text=text, usage=usage, reason=reason, alternatives=alternatives)
