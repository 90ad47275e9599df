"""The `openai` kernel: chat completions on any OpenAI-compatible endpoint.

Works with OpenAI itself and with local servers (vLLM, llama.cpp server, Ollama) via
`base_url`; those need no real key. Temperature 0 for repeatable answers; SDK retries off
(the runner retries); `max_tokens` rather than `max_completion_tokens` because local servers
understand it.
"""

from __future__ import annotations

from mcp_harness.kernels.anthropic_api import reply_from_text
from mcp_harness.kernels.base import KernelReply, KernelRequest, Usage
from mcp_harness.kernels.prompt import SYSTEM_PROMPT, clean_reply, render_prompt

DEFAULT_MODEL = "gpt-4o-mini"
NO_KEY = "no-key"  # local OpenAI-compatible servers ignore the key, the SDK insists on one


class OpenAIKernel:
    """`AsyncOpenAI.chat.completions.create`: system prompt + rendered prompt, temperature 0."""

    name = "openai"
    billable = True

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None = None,
        model: str = DEFAULT_MODEL,
        timeout_s: float = 600.0,
    ) -> None:
        import openai  # imported here: the offline default must not pay for the SDK

        self.model = model
        self.base_url = base_url
        self._client = openai.AsyncOpenAI(
            api_key=api_key or NO_KEY, base_url=base_url, max_retries=0, timeout=timeout_s
        )

    async def complete(self, request: KernelRequest) -> KernelReply:
        response = await self._client.chat.completions.create(
            model=self.model,
            messages=[
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": render_prompt(request)},
            ],
            temperature=0,
            max_tokens=request.max_tokens,
        )
        choice = response.choices[0] if response.choices else None
        text = (choice.message.content or "") if choice is not None else ""
        usage = response.usage
        spent = Usage(
            input_tokens=(usage.prompt_tokens or 0) if usage else 0,
            output_tokens=(usage.completion_tokens or 0) if usage else 0,
            calls=1,
        )
        truncated = choice is not None and choice.finish_reason == "length"
        return reply_from_text(clean_reply(text), spent, truncated, request)
